"""Whether a trace file keeps each saga in one trace, and whether it holds more than the harness.

A span belongs to a saga when it names the saga's id (``saga.id``, a message's conversation
id, or Temporal's workflow id) and variant (both styles' runs of a scenario share saga ids).
Every such span must be in the trace the saga's root span opens: a span of the saga anywhere
else (an end notice, an operator's action, a monitor's read) splits the saga over several
traces. A file whose sagas have no step span at all holds only the harness's spans (an
attached run that could not read the services' spans).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from harness.compare.root_span import is_saga_root
from harness.report.trace_file import Span, read_spans
from harness.report.traces import is_step
from shared.telemetry import SAGA_ID, SAGA_VARIANT

SAGA_KEYS = {
    SAGA_ID: None,
    "messaging.message.conversation_id": "choreography",
    "temporalWorkflowID": "orchestration",
}
"""Where a span names its saga, and the variant that key implies (None: ``saga.variant``)."""


@dataclass(frozen=True)
class TraceHealth:
    sagas: int
    split: tuple[str, ...]
    """Sagas (``<variant> <saga id>``) with spans outside their own trace."""
    strays: tuple[tuple[str, int], ...]
    """The names of those spans, with how many there were (the most frequent first)."""
    harness_only: bool

    @property
    def one_trace_per_saga(self) -> bool:
        return not self.split


def saga_of(span: Span) -> tuple[str, str] | None:
    """The saga (id, variant) a span names, if it names one."""
    for key, variant in SAGA_KEYS.items():
        value = span.attributes.get(key)
        if value:
            return str(value), variant or str(span.attributes.get(SAGA_VARIANT, "?"))
    return None


def trace_health(path: Path) -> TraceHealth:
    """Read the file once: each saga's trace, and any of its spans elsewhere."""
    spans = read_spans(path)
    ids = {span.span_id for span in spans}
    home: dict[tuple[str, str], str] = {}
    for span in spans:
        parentless = span.parent_span_id not in ids
        if (
            is_saga_root(span.name, span.attributes, parentless=parentless)
            and SAGA_ID in span.attributes
        ):
            home[(str(span.attributes[SAGA_ID]), str(span.attributes.get(SAGA_VARIANT)))] = (
                span.trace_id
            )
    split: set[tuple[str, str]] = set()
    strays: Counter[str] = Counter()
    for span in spans:
        saga = saga_of(span)
        if saga in home and span.trace_id != home[saga]:
            split.add(saga)
            strays[span.name] += 1
    return TraceHealth(
        sagas=len(home),
        split=tuple(f"{variant} {saga}" for saga, variant in sorted(split)),
        strays=tuple(strays.most_common()),
        harness_only=bool(home) and not any(is_step(span) for span in spans),
    )
