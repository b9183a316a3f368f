"""Sequence diagrams of what a saga's trace shows, and the distinct paths a scenario's sagas took.

The diagram is drawn in the lanes the spec's diagrams use, one row per thing that happened in
time order: the harness's commands or calls, each event delivered (choreography) or activity
called and answered (orchestration), each step attempt as a note coloured by how it ended,
the cancel, the deadline, the outcome, and, in a grey band, whatever went on after the outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.report.axis import ms_label
from harness.report.diagrams.model import Arrow, Block, Item, Message, Note, Participant, Sequence
from harness.report.flow import Attempt, Delivery, SagaFlow
from harness.report.lanes import HARNESS, LANE_ORDER, WORKFLOW
from harness.report.palette import rgb

FAULT_NAMES = {
    "delay_s": "delay",
    "delay_after_s": "held after commit",
    "hang": "hang",
    "permanent": "refusal",
    "transient": "transient error",
    "lose_ack": "lost acknowledgement",
    "crash": "crash",
}
FAILED = ("failed", "rejected", "error", "cancelled", "hung")


@dataclass(frozen=True)
class _Row:
    at: float
    rank: int
    """Within one moment: calls, then deliveries, then attempts, then markers."""
    item: Item


def trace_sequence(flow: SagaFlow, title: str) -> Sequence:
    """The saga as a sequence diagram (late rows in a band after the outcome's note)."""
    rows = [*_calls(flow), *_deliveries(flow), *_attempts(flow), *_markers(flow)]
    rows += [
        _Row(n.start_ms, 0, Message(n.edge.src, n.edge.dst, _at(n.edge.label, n.start_ms), "--)"))
        for n in flow.notices
    ]
    rows.sort(key=lambda r: (r.at, r.rank))
    early = tuple(r.item for r in rows if r.at <= flow.outcome_ms)
    late = tuple(r.item for r in rows if r.at > flow.outcome_ms)
    items: tuple[Item, ...] = early
    if late:
        note = Note((HARNESS,), f"after the outcome: until {ms_label(flow.quiet_ms)} ms")
        items += (Block("rect", rgb("late-light"), (note, *late)),)
    return Sequence(title, _participants(flow, rows), items)


def _participants(flow: SagaFlow, rows: list[_Row]) -> tuple[Participant, ...]:
    used = {HARNESS} | ({WORKFLOW} if flow.variant == "orchestration" else set())
    for row in rows:
        item = row.item
        if isinstance(item, Message):
            used |= {item.src, item.dst}
        elif isinstance(item, Note):
            used |= set(item.over)
    ordered = sorted(
        used, key=lambda lane: (LANE_ORDER.index(lane) if lane in LANE_ORDER else 99, lane)
    )
    return tuple(Participant(lane, lane) for lane in ordered)


def _at(label: str, ms: float) -> str:
    return f"{label} @ {ms_label(ms)} ms"


def _calls(flow: SagaFlow) -> list[_Row]:
    return [
        _Row(c.start_ms, 0, Message(c.edge.src, c.edge.dst, _at(c.edge.label, c.start_ms)))
        for c in flow.calls
    ]


def _deliveries(flow: SagaFlow) -> list[_Row]:
    rows: list[_Row] = []
    seen: Counter[tuple[str, str, str]] = Counter()
    for d in flow.deliveries:
        key = (d.edge.src, d.edge.dst, d.edge.label)
        seen[key] += 1
        if flow.variant == "orchestration":
            rows += _activity(d, seen[key])
            continue
        label = d.edge.label + _why(d, seen[key])
        rows.append(
            _Row(d.start_ms, 1, Message(d.edge.src, d.edge.dst, _at(label, d.start_ms), "-)"))
        )
        skipped = next((k for k in d.produced if k.endswith(".skipped")), None)
        if d.acted is None and skipped is not None:
            rows.append(_Row(d.start_ms, 2, Note((d.edge.dst,), f"skipped: {d.about or skipped}")))
    return rows


def _why(d: Delivery, count: int) -> str:
    """What a choreography delivery that ran no step was for."""
    if d.acted is not None:
        return " (redelivered)" if count > 1 else ""
    if d.edge.label.endswith("cancel_requested"):
        refused = any(k.endswith(".refused") for k in d.produced)
        return f" (fence {d.about}{': refused' if refused else ''})" if d.about else " (fence)"
    if any(k.endswith(".skipped") for k in d.produced):
        return ""
    if count > 1:
        return " (again: answered by the inbox)"
    return " (not its turn: ignored)"


def _activity(d: Delivery, count: int) -> list[_Row]:
    """An activity task: the call, and (for activities that are not steps) its answer."""
    name = d.edge.label
    call = Message(
        d.edge.src, d.edge.dst, _at(name + (f" (task {count})" if count > 1 else ""), d.start_ms)
    )
    rows = [_Row(d.start_ms, 1, call)]
    if d.acted is None:
        rows.append(_Row(d.end_ms, 3, Message(d.edge.dst, d.edge.src, f"{name}: done", "-->>")))
    return rows


def _attempts(flow: SagaFlow) -> list[_Row]:
    rows = []
    for a in flow.attempts:
        rows.append(_Row(a.start_ms, 2, Note((a.service,), attempt_note(a))))
        if flow.variant == "orchestration":
            arrow: Arrow = "--x" if a.outcome in FAILED else "-->>"
            reply = Message(a.service, WORKFLOW, _at(f"{a.step}: {a.outcome}", a.end_ms), arrow)
            rows.append(_Row(a.end_ms, 3, reply))
    return rows


def attempt_note(a: Attempt) -> str:
    """``done: reserve_inventory (3 ms)``, ``retry: ...``, ``hung: ...``: the word before the
    colon says how the attempt ended (and colours the note)."""
    took = f"{ms_label(a.duration_ms)} ms"
    nth = f" attempt {a.attempt}" if a.attempt > 1 else ""
    faults = f", fault: {', '.join(FAULT_NAMES.get(f, f) for f in a.faults)}" if a.faults else ""
    if a.outcome == "done":
        word = "undone" if a.phase == "compensate" else ("retry" if a.attempt > 1 else "done")
        return f"{word}: {a.step}{nth} ({took}{faults})"
    if a.outcome == "noop":
        return f"no-op: {a.step} (nothing to undo, {took})"
    if a.outcome == "hung":
        return f"hung: {a.step}{nth}, cut off after {took}"
    if a.outcome == "cancelled":
        return f"abandoned: {a.step}{nth}, cancelled after {took}{faults}"
    return f"{a.outcome}: {a.step}{nth} ({took}{faults})"


def _markers(flow: SagaFlow) -> list[_Row]:
    rows = []
    for m in flow.markers:
        if m.kind == "fault" or (m.kind == "cancel" and m.lane == HARNESS):
            continue  # in the attempt's note; the workflow's cancel is the harness's signal
        lane = m.lane if m.kind != "outcome" else HARNESS
        rows.append(_Row(m.at_ms, 4, Note((lane,), f"{m.label} @ {ms_label(m.at_ms)} ms")))
    return rows


def path_of(flow: SagaFlow) -> str:
    """The steps a saga went through, in order, each with how it ended: its path."""
    order: list[str] = []
    last: dict[str, Attempt] = {}
    tries: Counter[str] = Counter()
    for a in flow.attempts:
        if a.step not in last:
            order.append(a.step)
        last[a.step] = a
        tries[a.step] += 1
    parts = []
    for step in order:
        retried = (
            f" after {tries[step] - 1} retries"
            if tries[step] > 2
            else (" after 1 retry" if tries[step] == 2 else "")
        )
        parts.append(f"{step} {last[step].outcome}{retried}")
    return " \u2192 ".join(parts) or "no steps in the trace"


def distinct_paths(flows: list[SagaFlow]) -> list[tuple[str, int]]:
    """Each path taken and how many sagas took it, the most common first."""
    return Counter(path_of(f) for f in flows).most_common()
