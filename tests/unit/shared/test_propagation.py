"""The short path writes and reads exactly what ``propagate`` does, and steps aside otherwise."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter, TextMapPropagator
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

from shared import propagation

ids = st.tuples(
    st.integers(min_value=0, max_value=2**128 - 1),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=0, max_value=255),
)


def in_context(trace_id: int, span_id: int, flags: int, state: TraceState | None = None) -> Context:
    span = SpanContext(trace_id, span_id, False, TraceFlags(flags), state)
    return trace.set_span_in_context(NonRecordingSpan(span), Context())


def carried(context: Context) -> tuple[int, int, int, bool, str]:
    span = trace.get_current_span(context).get_span_context()
    return (span.trace_id, span.span_id, span.trace_flags, span.is_remote, str(span.trace_state))


@given(ids)
def test_injecting_a_span_writes_the_headers_propagate_writes(
    ids: tuple[int, int, int],
) -> None:
    context = in_context(*ids)
    ours: dict[str, str] = {"Saga-Id": "s-1"}
    theirs: dict[str, str] = {"Saga-Id": "s-1"}

    propagation.inject(ours, context)
    propagate.inject(theirs, context)

    assert ours == theirs


@given(ids)
def test_extracting_reads_back_what_propagate_reads(ids: tuple[int, int, int]) -> None:
    headers: dict[str, str] = {}
    propagate.inject(headers, in_context(*ids))

    assert carried(propagation.extract(headers)) == carried(propagate.extract(headers))


@pytest.mark.parametrize(
    "traceparent",
    [
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",  # upper case: refused
        "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",  # a later version
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # too short
        "00-0af7_651916cd43dd8448eb211c8031-b7ad6b7169203331-01",  # int() would take it
        "",
    ],
)
def test_any_traceparent_header_reads_as_propagate_reads_it(traceparent: str) -> None:
    headers = {"traceparent": traceparent}

    assert carried(propagation.extract(headers)) == carried(propagate.extract(headers))


def test_tracestate_and_baggage_take_propagates_own_path_both_ways() -> None:
    state = TraceState([("vendor", "x")])
    context = baggage.set_baggage("tenant", "a", in_context(0x1234, 0x5678, 1, state))
    ours: dict[str, str] = {}
    propagation.inject(ours, context)

    assert ours["tracestate"] == "vendor=x" and ours["baggage"] == "tenant=a"
    back = propagation.extract(ours)
    assert carried(back) == carried(propagate.extract(ours))
    assert baggage.get_baggage("tenant", back) == "a"


def test_a_context_with_no_span_writes_nothing() -> None:
    headers: dict[str, str] = {}

    propagation.inject(headers, Context())

    assert headers == {}


class Custom(TextMapPropagator):
    """Another format: a process configured with it must get it, not a traceparent."""

    def extract(
        self,
        carrier: object,
        context: Context | None = None,
        getter: object = DefaultGetter(),
    ) -> Context:
        return in_context(7, 8, 1)

    def inject(
        self,
        carrier: object,
        context: Context | None = None,
        setter: object = DefaultSetter(),
    ) -> None:
        assert isinstance(carrier, dict)
        carrier["x-custom"] = "yes"

    @property
    def fields(self) -> set[str]:
        return {"x-custom"}


@pytest.fixture
def custom_propagator() -> Iterator[None]:
    before = propagate.get_global_textmap()
    propagate.set_global_textmap(Custom())
    try:
        yield
    finally:
        propagate.set_global_textmap(before)


def test_a_process_configured_with_another_propagator_uses_it(custom_propagator: None) -> None:
    headers: dict[str, str] = {}
    propagation.inject(headers, in_context(1, 2, 1))
    assert headers == {"x-custom": "yes"}

    read = propagation.extract({"traceparent": f"00-{1:032x}-{2:016x}-01"})
    assert carried(read)[:2] == (7, 8)
