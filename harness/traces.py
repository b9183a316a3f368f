"""Trace analysis: OTLP JSON lines -> one span tree per saga -> latency split and counts.

The split of a saga's end-to-end time (the harness's root span, both variants alike):
- work: time inside the shared step spans (the domain's own work), merged;
- queue wait: for every receiving span (a consumer's ``process``, a Temporal ``RunActivity``),
  the gap between its sender's end and its own start: time spent waiting in a queue;
- coordination: the rest: engine overhead, workflow tasks, outbox relays, the tracker.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.contracts import StepName
from shared.telemetry import (
    ROOT_SPAN_PREFIX,
    SAGA_ATTEMPT,
    SAGA_OUTCOME,
    SAGA_PHASE,
    SAGA_REASON,
    SAGA_SCENARIO,
    SAGA_STEP,
    SAGA_VARIANT,
    read_jsonl,
)

STEP_NAMES = frozenset(step.value for step in StepName)
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


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    status: int
    service: str
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    @property
    def is_step(self) -> bool:
        return self.name in STEP_NAMES and SAGA_STEP in self.attributes


@dataclass
class SagaTrace:
    """One saga's trace, rooted at the harness's ``saga <order_id>`` span."""

    root: Span
    spans: list[Span]

    @property
    def trace_id(self) -> str:
        return self.root.trace_id

    @property
    def variant(self) -> str:
        return str(self.root.attributes.get(SAGA_VARIANT, "?"))

    @property
    def scenario(self) -> str:
        return str(self.root.attributes.get(SAGA_SCENARIO, "custom"))

    @property
    def order_id(self) -> str:
        return self.root.name.removeprefix(ROOT_SPAN_PREFIX)

    @property
    def outcome(self) -> str:
        return str(self.root.attributes.get(SAGA_OUTCOME, "?"))

    @property
    def reason(self) -> str | None:
        reason = self.root.attributes.get(SAGA_REASON)
        return str(reason) if reason else None


def load_traces(path: Path) -> list[SagaTrace]:
    """Every saga trace in a file; one trace's spans may come on many lines and processes."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for raw in read_jsonl(path):
        by_trace[raw["trace_id"]].append(_span(raw))
    sagas = [_tree(spans) for spans in by_trace.values()]
    return sorted((s for s in sagas if s is not None), key=lambda s: s.root.start_ns)


def _span(raw: dict[str, Any]) -> Span:
    return Span(
        trace_id=raw["trace_id"],
        span_id=raw["span_id"],
        parent_span_id=raw["parent_span_id"],
        name=raw["name"],
        kind=raw["kind"],
        start_ns=raw["start_ns"],
        end_ns=raw["end_ns"],
        attributes=raw["attributes"],
        events=raw["events"],
        status=raw["status"],
        service=str(raw["resource"].get("service.name", "")),
    )


def _tree(spans: list[Span]) -> SagaTrace | None:
    by_id = {span.span_id: span for span in spans}
    roots = [s for s in spans if s.parent_span_id not in by_id]
    saga_roots = [s for s in roots if s.name.startswith(ROOT_SPAN_PREFIX)]
    if not saga_roots:
        return None
    for span in sorted(spans, key=lambda s: (s.start_ns, s.name)):
        parent = by_id.get(span.parent_span_id or "")
        if parent is not None:
            parent.children.append(span)
    return SagaTrace(saga_roots[0], spans)


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
    variant: str
    scenario: str
    order_id: str
    trace_id: str
    outcome: str
    reason: str | None
    e2e_ms: float
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
    root = saga.root
    window = (root.start_ns, root.end_ns)
    steps = [s for s in saga.spans if s.is_step]
    work = _union_ns([(s.start_ns, s.end_ns) for s in steps], window)
    queue = _union_ns(_queue_gaps(saga), window)
    e2e = root.end_ns - root.start_ns
    return SagaMetrics(
        variant=saga.variant,
        scenario=saga.scenario,
        order_id=saga.order_id,
        trace_id=saga.trace_id,
        outcome=saga.outcome,
        reason=saga.reason,
        e2e_ms=e2e / 1e6,
        work_ms=work / 1e6,
        queue_ms=queue / 1e6,
        coordination_ms=max(0, e2e - work - queue) / 1e6,
        spans=len(saga.spans),
        spans_by_kind=dict(Counter(KIND_NAMES.get(s.kind, "?") for s in saga.spans)),
        messages=_messages(saga),
        retries=sum(1 for s in steps if int(s.attributes.get(SAGA_ATTEMPT, 1)) > 1),
        failure_to_compensation_ms=_failure_to_compensation(steps),
    )


def _queue_gaps(saga: SagaTrace) -> list[tuple[int, int]]:
    by_id = {span.span_id: span for span in saga.spans}
    gaps = []
    for span in saga.spans:
        sender = by_id.get(span.parent_span_id or "")
        if sender is not None and span.name.startswith(RECEIVER_PREFIXES):
            # A sender still open when the receiver starts (the root) sent at its start.
            sent = sender.end_ns if sender.end_ns <= span.start_ns else sender.start_ns
            gaps.append((sent, span.start_ns))
    return gaps


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


def variant_summary(metrics: list[SagaMetrics]) -> dict[str, dict[str, float]]:
    """Per variant: saga count, latency percentiles and mean split, messages, retries."""
    by_variant: dict[str, list[SagaMetrics]] = defaultdict(list)
    for m in metrics:
        by_variant[m.variant].append(m)
    summary = {}
    for variant, items in sorted(by_variant.items()):
        e2e = [m.e2e_ms for m in items]
        summary[variant] = {
            "sagas": float(len(items)),
            "p50_ms": percentile(e2e, 50),
            "p95_ms": percentile(e2e, 95),
            "p99_ms": percentile(e2e, 99),
            "mean_work_ms": statistics.fmean(m.work_ms for m in items),
            "mean_queue_ms": statistics.fmean(m.queue_ms for m in items),
            "mean_coordination_ms": statistics.fmean(m.coordination_ms for m in items),
            "mean_spans": statistics.fmean(m.spans for m in items),
            "mean_messages": statistics.fmean(m.messages for m in items),
            "retries": float(sum(m.retries for m in items)),
        }
    return summary
