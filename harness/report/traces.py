"""Trace analysis: OTLP JSON lines -> one span tree per saga -> latency split and counts.

The split of a saga's end-to-end time (the harness's root span, both variants alike):
- work: time inside the shared step spans (the domain's own work), merged;
- queue wait: for every receiving span (a consumer's ``process``, a Temporal ``RunActivity``),
  the gap between its sender's end and its own start: time spent waiting in a queue;
- coordination: the rest: engine overhead, workflow tasks, outbox relays, the tracker.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare.root_span import SAGA_REPEAT, is_saga_root, order_id_of
from harness.report.trace_file import Span, TraceFileError, read_spans
from shared.telemetry import (
    SAGA_ATTEMPT,
    SAGA_ID,
    SAGA_OUTCOME,
    SAGA_PHASE,
    SAGA_REASON,
    SAGA_SCENARIO,
    SAGA_STEP,
    SAGA_VARIANT,
)

__all__ = ["SagaTrace", "Span", "TraceFileError", "load_traces", "saga_metrics"]

KIND_NAMES = {
    0: "unspecified",
    1: "internal",
    2: "server",
    3: "client",
    4: "producer",
    5: "consumer",
}
RECEIVER_PREFIXES = ("process ", "RunActivity:", "RunWorkflow:")
ERROR = 2


def is_step(span: Span) -> bool:
    """A shared domain step's span (forward or compensation), the same in both variants: named
    after the step it runs, whatever the saga definition."""
    return span.attributes.get(SAGA_STEP) == span.name


@dataclass
class SagaTrace:
    """One saga's trace, rooted at the harness's ``saga <variant> <order_id>`` span."""

    root: Span
    spans: list[Span]

    @property
    def trace_id(self) -> str:
        return self.root.trace_id

    @property
    def saga_id(self) -> str:
        return str(self.root.attributes.get(SAGA_ID, self.order_id))

    @property
    def variant(self) -> str:
        return str(self.root.attributes.get(SAGA_VARIANT, "?"))

    @property
    def scenario(self) -> str:
        return str(self.root.attributes.get(SAGA_SCENARIO, "custom"))

    @property
    def repeat(self) -> int:
        """Which run of the catalogue the saga belongs to; 1 in files without repeats."""
        return int(self.root.attributes.get(SAGA_REPEAT, 1))

    @property
    def order_id(self) -> str:
        return order_id_of(self.root.name, self.root.attributes)

    @property
    def outcome(self) -> str:
        return str(self.root.attributes.get(SAGA_OUTCOME, "?"))

    @property
    def reason(self) -> str | None:
        reason = self.root.attributes.get(SAGA_REASON)
        return str(reason) if reason else None

    @property
    def last_end_ns(self) -> int:
        """When the saga's last span ended: work can go on after the outcome is observed."""
        return max(span.end_ns for span in self.spans)


def load_traces(path: Path) -> list[SagaTrace]:
    """Every saga trace in a file; one trace's spans may come on many lines and processes.

    Raises ``TraceFileError`` (a ``ValueError``) naming the line of a malformed file.
    """
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in read_spans(path):
        by_trace[span.trace_id].append(span)
    sagas = [saga for spans in by_trace.values() for saga in _sagas(spans)]
    return sorted(sagas, key=lambda s: (s.root.start_ns, s.root.name))


def _sagas(spans: list[Span]) -> list[SagaTrace]:
    """The trace's saga roots with their spans: all of the trace's when it has one root."""
    by_id = {span.span_id: span for span in spans}
    roots = [
        s
        for s in spans
        if is_saga_root(s.name, s.attributes, parentless=s.parent_span_id not in by_id)
    ]
    for span in sorted(spans, key=lambda s: (s.start_ns, s.name)):
        parent = by_id.get(span.parent_span_id or "")
        if parent is not None:
            parent.children.append(span)
    if len(roots) == 1:
        return [SagaTrace(roots[0], spans)]
    return [SagaTrace(root, _descendants(root)) for root in roots]


def _descendants(root: Span) -> list[Span]:
    found, stack = [], [root]
    while stack:
        span = stack.pop()
        found.append(span)
        stack.extend(span.children)
    return found


def render_tree(saga: SagaTrace, *, attributes: tuple[str, ...] = (SAGA_STEP, SAGA_PHASE)) -> str:
    """The span tree as indented names (with chosen attributes): golden-test friendly."""
    lines: list[str] = []

    def walk(span: Span, depth: int) -> None:
        shown = [f"{key}={span.attributes[key]}" for key in attributes if key in span.attributes]
        suffix = f" [{' '.join(shown)}]" if shown else ""
        lines.append(f"{'  ' * depth}{span.name}{suffix}")
        for child in span.children:
            walk(child, depth + 1)

    walk(saga.root, 0)
    return "\n".join(lines)


@dataclass(frozen=True)
class SagaMetrics:
    """One saga's numbers; ``tail_ms`` is how long spans went on after the outcome."""

    variant: str
    scenario: str
    repeat: int
    order_id: str
    trace_id: str
    outcome: str
    reason: str | None
    e2e_ms: float
    quiescence_ms: float
    tail_ms: float
    work_ms: float
    queue_ms: float
    coordination_ms: float
    spans: int
    spans_by_kind: dict[str, int]
    messages: int
    retries: int
    failure_to_compensation_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def saga_metrics(saga: SagaTrace) -> SagaMetrics:
    """End-to-end latency, time to quiescence, the latency split, counts and retries."""
    root = saga.root
    window = (root.start_ns, root.end_ns)
    steps = [s for s in saga.spans if is_step(s)]
    busy = [(s.start_ns, s.end_ns) for s in steps]
    work = _union_ns(busy, window)
    # Waiting that overlaps another branch's work counts as work, so the three parts add up.
    queue = _union_ns(busy + queue_gaps(saga), window) - work
    e2e = root.end_ns - root.start_ns
    quiescence = max(saga.last_end_ns, root.end_ns) - root.start_ns
    return SagaMetrics(
        variant=saga.variant,
        scenario=saga.scenario,
        repeat=saga.repeat,
        order_id=saga.order_id,
        trace_id=saga.trace_id,
        outcome=saga.outcome,
        reason=saga.reason,
        e2e_ms=e2e / 1e6,
        quiescence_ms=quiescence / 1e6,
        tail_ms=(quiescence - e2e) / 1e6,
        work_ms=work / 1e6,
        queue_ms=queue / 1e6,
        coordination_ms=max(0, e2e - work - queue) / 1e6,
        spans=len(saga.spans),
        spans_by_kind=dict(Counter(KIND_NAMES.get(s.kind, "?") for s in saga.spans)),
        messages=_messages(saga),
        retries=sum(1 for s in steps if is_retry(s)),
        failure_to_compensation_ms=_failure_to_compensation(steps),
    )


def is_retry(span: Span) -> bool:
    """A step span that is not its step's first attempt."""
    return int(span.attributes.get(SAGA_ATTEMPT, 1)) > 1


def queue_waits(saga: SagaTrace) -> list[tuple[Span, int]]:
    """Every receiving span with the time its message or task was sent.

    A retried activity or a redelivered event has the same sender every time: each later
    attempt waited from the end of the one before it, not from the first send.
    """
    by_id = {span.span_id: span for span in saga.spans}
    previous: dict[str, Span] = {}
    waits = []
    for span in sorted(saga.spans, key=lambda s: s.start_ns):
        sender = by_id.get(span.parent_span_id or "")
        if sender is None or not span.name.startswith(RECEIVER_PREFIXES):
            continue
        # A sender still open when the receiver starts (the root) sent at its start.
        sent = sender.end_ns if sender.end_ns <= span.start_ns else sender.start_ns
        before = previous.get(sender.span_id)
        if before is not None and before.name == span.name and before.end_ns <= span.start_ns:
            sent = max(sent, before.end_ns)
        previous[sender.span_id] = span
        waits.append((span, sent))
    return waits


def queue_gaps(saga: SagaTrace) -> list[tuple[int, int]]:
    """The (sent, handling started) intervals: time spent waiting in a queue."""
    return [(sent, span.start_ns) for span, sent in queue_waits(saga)]


def _messages(saga: SagaTrace) -> int:
    """Coordination messages: delivered events (choreography) or activity/workflow tasks run."""
    return sum(1 for span in saga.spans if span.name.startswith(RECEIVER_PREFIXES))


def _failure_to_compensation(steps: list[Span]) -> float | None:
    failures = [s.end_ns for s in steps if s.status == ERROR]
    compensations = [s.start_ns for s in steps if s.attributes.get(SAGA_PHASE) == "compensate"]
    if not failures or not compensations:
        return None
    return max(0, min(compensations) - min(failures)) / 1e6


def _union_ns(intervals: list[tuple[int, int]], window: tuple[int, int]) -> int:
    """Total time covered by the intervals inside the window, overlaps counted once."""
    total, reach = 0, window[0]
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, window[1])
        if end > start:
            total += end - start
            reach = end
    return total


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
