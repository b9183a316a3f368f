"""A message's trace context in and out of its headers, on a short path for the usual case.

``propagate.inject`` / ``propagate.extract`` go through the global composite propagator (W3C
trace context, then baggage), a getter and a setter, and a regular expression looked up in
``re``'s cache: on the choreography's hot path that is paid three times per message (the
outbox row, the publish, each consumer). When the process propagates with the SDK's default
(``OTEL_PROPAGATORS`` unset or ``tracecontext,baggage``) and a message carries only a
``traceparent`` (no ``tracestate``, no baggage), these write and read that one header
directly, with the same result; anything else goes to ``propagate`` as before.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags

TRACEPARENT = "traceparent"
DEFAULT_FIELDS = frozenset({TRACEPARENT, "tracestate", "baggage"})
"""The headers of the SDK's default propagators, W3C trace context and baggage."""
_VERSION_00 = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")

_checked: object = None
_default = False


def default_propagation() -> bool:
    """Whether the global propagator is the SDK's default pair (checked again if replaced)."""
    global _checked, _default
    textmap = propagate.get_global_textmap()
    if textmap is not _checked:
        _checked, _default = textmap, textmap.fields == DEFAULT_FIELDS
    return _default


def extract(carrier: Mapping[str, str]) -> Context:
    """What ``propagate.extract(carrier)`` returns: a fresh context holding the carried span."""
    header = carrier.get(TRACEPARENT)
    if header is None or "tracestate" in carrier or "baggage" in carrier:
        return propagate.extract(carrier)
    found = _VERSION_00.fullmatch(header)
    if found is None or not default_propagation():
        return propagate.extract(carrier)
    trace_id, span_id = int(found[1], 16), int(found[2], 16)
    if not trace_id or not span_id:
        return propagate.extract(carrier)
    carried = SpanContext(trace_id, span_id, True, TraceFlags(int(found[3], 16)))
    return trace.set_span_in_context(NonRecordingSpan(carried), Context())


def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> None:
    """What ``propagate.inject(carrier, context)`` writes: the current (or ``context``'s) span
    as ``traceparent``."""
    if not default_propagation() or baggage.get_all(context):
        propagate.inject(carrier, context)
        return
    span = trace.get_current_span(context).get_span_context()
    if span == INVALID_SPAN_CONTEXT:
        return
    if not span.is_valid or span.trace_state:
        propagate.inject(carrier, context)
        return
    carrier[TRACEPARENT] = f"00-{span.trace_id:032x}-{span.span_id:016x}-{span.trace_flags:02x}"
