"""Tracing for every process: who made a span, where spans go, and the canonical saga names.

Identity. Every span's resource names the component that made it: ``service.name`` (one of
the five services, ``order-saga-worker`` or ``saga-compare-harness``), ``service.namespace``
``saga-compare`` and ``saga.variant``. A process holds one TracerProvider per component, all
feeding the process's single span pipeline, so the five choreography services and the Temporal
worker keep their own names when they run inside the harness's process.

Routing. The global provider is a router: a tracer got anywhere with ``trace.get_tracer`` asks,
for each span it starts, which component's provider makes it:

1. the component of the current ``service_scope`` -- a context variable, inherited by every
   asyncio task created inside the scope: a service host (or the worker) starts its consumer,
   relay and poller tasks inside its scope, and every span of those tasks carries its name;
2. otherwise the component of the span's parent, when the parent is a span of this process;
3. otherwise the process's own component (the one ``configure_tracing`` was first called with).

A component without a fixed variant (the harness, which drives both) takes the ``saga.variant``
attribute of the span itself, so each variant's root spans show the harness under that variant.
Code that runs outside the asyncio tasks (Temporal runs workflow code on executor threads)
takes an explicit tracer: ``tracing.tracer(name, component)``.

Sinks. One pipeline per process: an in-memory exporter for tests (synchronous) and at most one
batch processor, which writes each span to every sink (the JSON-lines file the report reads and,
when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, OTLP/HTTP protobuf). A harness session attaches its
sinks for its lifetime (``Tracing.exporting``); a service process attaches them at start.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes

from shared.trace_files import JsonLinesSpanExporter, decode_value, encode_spans, read_jsonl

__all__ = [
    "HARNESS",
    "NAMESPACE",
    "WORKER",
    "Component",
    "JsonLinesSpanExporter",
    "Tracing",
    "configure_tracing",
    "current_tracing",
    "decode_value",
    "encode_spans",
    "get_tracer",
    "otlp_configured",
    "read_jsonl",
    "recording",
    "service_component",
    "service_scope",
    "step_attributes",
]

SAGA_ID = "saga.id"
SAGA_VARIANT = "saga.variant"
SAGA_STEP = "saga.step"
SAGA_PHASE = "saga.phase"
SAGA_ATTEMPT = "saga.attempt"
SAGA_OUTCOME = "saga.outcome"
SAGA_ORDER_ID = "saga.order_id"
SAGA_SCENARIO = "saga.scenario"
SAGA_REASON = "saga.reason"
ROOT_SPAN_PREFIX = "saga "
"""The harness's root span per saga is named ``saga <order_id>``."""

NAMESPACE = "saga-compare"
SERVICE_NAME = "service.name"
SERVICE_NAMESPACE = "service.namespace"
OTLP_ENV = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_random = random.Random()
"""Ids of dropped root spans (the SDK's own generator draws from ``random`` the same way)."""
QUEUE_SIZE = 16_384
"""Spans the batch processor holds before it drops: a slow OTLP receiver must not cost the file
(the report's source) the spans of a benchmark burst."""


@dataclass(frozen=True)
class Component:
    """What a span's resource names: a service (or worker, or harness) of one variant."""

    service: str
    variant: str | None = None
    """None for the harness: each span takes its saga's variant (see the module docstring)."""

    def with_variant(self, variant: str | None) -> Component:
        return replace(self, variant=variant)

    def resource(self) -> Resource:
        """The environment's resource attributes (OTEL_RESOURCE_ATTRIBUTES), then ours on top."""
        ours: dict[str, str] = {SERVICE_NAME: self.service, SERVICE_NAMESPACE: NAMESPACE}
        if self.variant is not None:
            ours[SAGA_VARIANT] = self.variant
        return Resource.create().merge(Resource(ours))


HARNESS = Component("saga-compare-harness")
WORKER = Component("order-saga-worker", "orchestration")


def service_component(service: str) -> Component:
    """A choreography service (``inventory``, ``payment`` ...) by its canonical name."""
    return Component(service, "choreography")


_SCOPE: ContextVar[Component | None] = ContextVar("saga_compare_service", default=None)


@contextlib.contextmanager
def service_scope(component: Component) -> Iterator[None]:
    """Spans started in this block, and in asyncio tasks created in it, belong to ``component``."""
    token = _SCOPE.set(component)
    try:
        yield
    finally:
        _SCOPE.reset(token)


class SwitchableSampler(Sampler):
    """Samples every root span while on; off, spans are non-recording (benchmarks' baseline).

    On, it decides as the SDK's ``ParentBased(ALWAYS_ON)`` would (a root or a sampled parent:
    recorded; an unsampled parent: dropped), in one step instead of three delegations."""

    def __init__(self) -> None:
        self.enabled = True

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        state = parent.trace_state if parent.is_valid else None
        if self.enabled and (not parent.is_valid or parent.trace_flags.sampled):
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)
        return SamplingResult(Decision.DROP, None, state)

    def get_description(self) -> str:
        return f"SwitchableSampler(enabled={self.enabled})"


class FanOutExporter(SpanExporter):
    """One batch, every sink: the file and OTLP see the same spans from one queue."""

    def __init__(self, sinks: Sequence[SpanExporter]) -> None:
        self.sinks = list(sinks)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        results = [sink.export(spans) for sink in self.sinks]
        ok = all(result is SpanExportResult.SUCCESS for result in results)
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return all(sink.force_flush(timeout_millis) for sink in self.sinks)

    def shutdown(self) -> None:
        for sink in self.sinks:
            sink.shutdown()


class Pipeline(SpanProcessor):
    """The process's one span processor, shared by every component's provider."""

    def __init__(self, memory: InMemorySpanExporter | None) -> None:
        self.memory = memory
        self._memory = SimpleSpanProcessor(memory) if memory is not None else None
        self._batch: BatchSpanProcessor | None = None
        self._sinks: FanOutExporter | None = None

    @property
    def sinks(self) -> list[SpanExporter]:
        return [] if self._sinks is None else list(self._sinks.sinks)

    def attach(self, sinks: Sequence[SpanExporter]) -> None:
        """Start exporting to ``sinks``; a second set while one is attached is a bug."""
        if self._batch is not None:
            raise RuntimeError("span sinks are attached already: one exporter pipeline only")
        self._sinks = FanOutExporter(sinks)
        self._batch = BatchSpanProcessor(self._sinks, max_queue_size=QUEUE_SIZE)

    def detach(self) -> None:
        """Export what is queued, then stop the sinks."""
        batch, self._batch, self._sinks = self._batch, None, None
        if batch is not None:
            batch.shutdown()  # type: ignore[no-untyped-call]

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        if self._memory is not None:
            self._memory.on_end(span)
        batch = self._batch
        if batch is not None:
            batch.on_end(span)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._batch.force_flush(timeout_millis) if self._batch is not None else True

    def shutdown(self) -> None:
        self.detach()


class Tracing:
    """The process's tracing: one provider per component over one pipeline, and the router."""

    def __init__(self, default: Component, *, memory: bool = False) -> None:
        self.default = default
        self.sampler = SwitchableSampler()
        self.pipeline = Pipeline(InMemorySpanExporter() if memory else None)
        self.router = RouterProvider(self)
        self._providers: dict[Component, TracerProvider] = {}
        self._by_resource: dict[int, TracerProvider] = {}

    @property
    def memory(self) -> InMemorySpanExporter | None:
        return self.pipeline.memory

    def provider(self, component: Component) -> TracerProvider:
        """The component's provider, made on first use; every one shares the pipeline."""
        provider = self._providers.get(component)
        if provider is None:
            provider = TracerProvider(
                resource=component.resource(), sampler=self.sampler, shutdown_on_exit=False
            )
            provider.add_span_processor(self.pipeline)
            self._providers[component] = provider
            self._by_resource[id(provider.resource)] = provider
        return provider

    def owner_of(self, span: trace.Span) -> TracerProvider | None:
        """The provider that made ``span``, if this process's pipeline made it."""
        resource = span.resource if isinstance(span, SdkSpan) else None
        return self._by_resource.get(id(resource)) if resource is not None else None

    def tracer(self, name: str, component: Component | None = None) -> trace.Tracer:
        """A tracer fixed to ``component``, or a routing one (see the module docstring)."""
        if component is None:
            return self.router.get_tracer(name)
        return FixedTracer(self, name, self.provider(component).get_tracer(name))

    @contextlib.contextmanager
    def exporting(self, *, jsonl: Path | None = None, otlp: bool | None = None) -> Iterator[None]:
        """Export to the file and/or OTLP (default: when the environment names an endpoint)."""
        self.attach(jsonl=jsonl, otlp=otlp)
        try:
            yield
        finally:
            self.pipeline.detach()

    def attach(self, *, jsonl: Path | None = None, otlp: bool | None = None) -> None:
        """Attach the sinks for good (a service process); see ``exporting`` for a session."""
        sinks: list[SpanExporter] = []
        if jsonl is not None:
            sinks.append(JsonLinesSpanExporter(jsonl))
        if otlp_configured() if otlp is None else otlp:
            sinks.append(_otlp_exporter())
        if sinks:
            self.pipeline.attach(sinks)

    def flush(self) -> None:
        self.pipeline.force_flush()

    def set_enabled(self, enabled: bool) -> None:
        """Turn recording on or off for the whole process (the benchmark's tracing-off run)."""
        self.sampler.enabled = enabled

    def dropped(self, context: otel_context.Context | None = None) -> trace.Span | None:
        """The span to hand out instead of starting one when a span started now under
        ``context`` would not be recorded (tracing off, or an unsampled parent); None when it
        would be."""
        parent = trace.get_current_span(context).get_span_context()
        if self.sampler.enabled and (not parent.is_valid or parent.trace_flags.sampled):
            return None
        return _dropped_span(parent)

    def recording(self, context: otel_context.Context | None = None) -> bool:
        """Whether a span started now under ``context`` would be recorded: callers skip
        building a dropped span's attributes."""
        return self.dropped(context) is None

    def shutdown(self) -> None:
        self.pipeline.shutdown()


class RouterProvider(trace.TracerProvider):
    """The global provider: hands out tracers that pick a component's provider per span."""

    def __init__(self, tracing: Tracing) -> None:
        self._tracing = tracing

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return RoutingTracer(self._tracing, instrumenting_module_name)


class RoutingTracer(trace.Tracer):
    """Starts each span on the provider of its component: scope, local parent, or default.

    A span that would not be recorded -- tracing switched off, or a parent that was not
    sampled -- costs no routing, no ids and no attributes: it is the parent's context as a
    non-recording span (a fresh valid context for a root, so "are we in a trace" still holds),
    which is what the sampler would have decided at the price of a whole SDK span.
    """

    def __init__(self, tracing: Tracing, name: str) -> None:
        self._tracing = tracing
        self._name = name
        self._tracers: dict[int, trace.Tracer] = {}

    def target(self, context: otel_context.Context | None, attributes: Attributes) -> trace.Tracer:
        """The real tracer for a span started now with this parent context and attributes."""
        provider = self._provider(context, attributes)
        tracer = self._tracers.get(id(provider))
        if tracer is None:
            tracer = self._tracers[id(provider)] = provider.get_tracer(self._name)
        return tracer

    def _provider(
        self, context: otel_context.Context | None, attributes: Attributes
    ) -> TracerProvider:
        component = _SCOPE.get()
        if component is None:
            owner = self._tracing.owner_of(trace.get_current_span(context))
            if owner is not None:
                return owner
            component = self._tracing.default
        if component.variant is None and attributes and SAGA_VARIANT in attributes:
            component = component.with_variant(str(attributes[SAGA_VARIANT]))
        return self._tracing.provider(component)

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        dropped = self._tracing.dropped(context)
        if dropped is not None:
            return dropped
        return self.target(context, attributes).start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> CurrentSpan:
        def start() -> trace.Span:
            return self.start_span(
                name,
                context,
                kind,
                attributes,
                links,
                start_time,
                record_exception,
                set_status_on_exception,
            )

        return CurrentSpan(start, end_on_exit, record_exception, set_status_on_exception)


class LazyTracer(trace.Tracer):
    """A module-level tracer (``get_tracer``): the process's routing tracer from the first span
    after ``configure_tracing``, and the API's until then.

    The API's ``trace.get_tracer`` at import time, before the provider is set, hands out a
    proxy that wraps every ``start_as_current_span`` in a generator context manager of its
    own, around the router's ``CurrentSpan``: on every span of the hot path."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._real: trace.Tracer | None = None

    def _tracer(self) -> trace.Tracer:
        real = self._real
        if real is None:
            if _PROCESS is None:  # not configured (yet): whatever the API has
                return trace.get_tracer(self._name)
            real = self._real = _PROCESS.router.get_tracer(self._name)
        return real

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        return self._tracer().start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> contextlib.AbstractContextManager[trace.Span]:
        return self._tracer().start_as_current_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
            end_on_exit,
        )


def get_tracer(name: str) -> trace.Tracer:
    """The tracer a module keeps at module level (``_tracer = get_tracer(__name__)``)."""
    return LazyTracer(name)


class FixedTracer(RoutingTracer):
    """A tracer of one component's provider (code off the asyncio tasks: Temporal's workflow
    threads), with the router's cheap dropped spans."""

    def __init__(self, tracing: Tracing, name: str, tracer: trace.Tracer) -> None:
        super().__init__(tracing, name)
        self._fixed = tracer

    def target(self, context: otel_context.Context | None, attributes: Attributes) -> trace.Tracer:
        return self._fixed


class CurrentSpan:
    """``with tracer.start_as_current_span(...)`` as one small object instead of two nested
    generators (the SDK's and ``use_span``): the span starts on entry and is current inside;
    on the way out an exception is recorded as ``use_span`` records it, then the span ends."""

    __slots__ = ("_end", "_record", "_span", "_start", "_status", "_token")

    def __init__(
        self,
        start: Callable[[], trace.Span],
        end_on_exit: bool,
        record_exception: bool,
        set_status_on_exception: bool,
    ) -> None:
        self._start = start
        self._end = end_on_exit
        self._record = record_exception
        self._status = set_status_on_exception

    def __enter__(self) -> trace.Span:
        self._span = span = self._start()
        self._token = otel_context.attach(trace.set_span_in_context(span))
        return span

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        otel_context.detach(self._token)
        span = self._span
        # Only Exceptions, as use_span: a cancel or an exit is not the span's error.
        if isinstance(error, Exception) and span.is_recording():
            if self._record:
                span.record_exception(error)
            if self._status:
                span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        if self._end:
            span.end()


def _dropped_span(parent: SpanContext) -> trace.Span:
    """The non-recording span a dropped span is: its parent's context, or a fresh unsampled
    root context (valid, so code asking whether it runs in a trace gets the usual answer)."""
    if parent.is_valid:
        return NonRecordingSpan(parent)
    root = SpanContext(_random.getrandbits(128) or 1, _random.getrandbits(64) or 1, is_remote=False)
    return NonRecordingSpan(root)


_PROCESS: Tracing | None = None


def configure_tracing(component: Component, *, memory: bool = False) -> Tracing:
    """The process's tracing, made and installed as the global provider on the first call.

    The first call fixes the process's own component and whether finished spans are kept in
    memory (tests); later calls return the same object. Sinks are attached separately: a
    service process ``attach``es them at start, a harness session is ``exporting`` to them.
    """
    global _PROCESS
    if _PROCESS is None:
        _PROCESS = Tracing(component, memory=memory)
        trace.set_tracer_provider(_PROCESS.router)
    return _PROCESS


def current_tracing() -> Tracing | None:
    """The process's tracing if ``configure_tracing`` ran (a library must not fix it first)."""
    return _PROCESS


def recording(context: otel_context.Context | None = None) -> bool:
    """Whether a span started now (under ``context``) would be recorded by this process's
    tracing: code that builds a span's attributes skips that work for a dropped span."""
    return _PROCESS is not None and _PROCESS.recording(context)


def otlp_configured() -> bool:
    """Whether the environment names an OTLP endpoint (the SDK's own variables)."""
    return any(os.environ.get(name) for name in OTLP_ENV)


def _otlp_exporter() -> SpanExporter:
    """OTLP/HTTP protobuf to the environment's endpoint (``<endpoint>/v1/traces``)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def step_attributes(
    saga_id: str, variant: str, step: str, phase: str, attempt: int
) -> dict[str, str | int]:
    """The canonical attributes every step span carries, in both variants."""
    return {
        SAGA_ID: saga_id,
        SAGA_VARIANT: variant,
        SAGA_STEP: step,
        SAGA_PHASE: phase,
        SAGA_ATTEMPT: attempt,
    }
