"""The two styles' traces of a scenario aligned step by step, and one sentence of what differs.

Each style is represented by its median saga (the one the report draws): per step its outcome,
attempts, the messages or tasks that carried it, its time in the step, and whether it went on
after the outcome. The sentence names the one difference that matters most: a step only one
style runs, then work going on after the outcome, then attempts, then plain speed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.report.flow import Attempt, SagaFlow
from harness.report.stats import VariantStats

STYLE_WORD = {"orchestration": "orchestrated", "choreography": "choreographed"}
QUIET_MS = 100.0
"""Work after the outcome shorter than this is not worth a sentence."""


@dataclass(frozen=True)
class Cell:
    """One step in one style."""

    outcome: str
    attempts: int
    messages: int
    start_ms: float
    busy_ms: float
    after_outcome: bool

    @property
    def label(self) -> str:
        tries = f" x{self.attempts}" if self.attempts > 1 else ""
        return f"{self.outcome}{tries}"


@dataclass(frozen=True)
class DiffRow:
    step: str
    cells: dict[str, Cell | None]


@dataclass(frozen=True)
class TraceDiff:
    rows: list[DiffRow]
    sentence: str


def _cells(flow: SagaFlow) -> dict[str, Cell]:
    by_step: dict[str, list[Attempt]] = {}
    for a in flow.attempts:
        by_step.setdefault(a.step, []).append(a)
    carried = Counter(d.acted for d in flow.deliveries if d.acted)
    return {
        step: Cell(
            outcome=attempts[-1].outcome,
            attempts=len(attempts),
            messages=carried[step],
            start_ms=attempts[0].start_ms,
            busy_ms=sum(a.duration_ms for a in attempts),
            after_outcome=any(a.end_ms > flow.outcome_ms for a in attempts),
        )
        for step, attempts in by_step.items()
    }


def trace_diff(
    scenario: str,
    flows: dict[str, SagaFlow],
    stats: dict[str, VariantStats],
    every: dict[str, list[SagaFlow]] | None = None,
) -> TraceDiff:
    """The median sagas of both styles aligned by step, and the sentence; ``every``: all the
    sagas of each style, where the sentence looks for what ran after an outcome."""
    cells = {variant: _cells(flow) for variant, flow in flows.items()}
    order: list[str] = []
    for variant in flows:
        for step, _ in sorted(cells[variant].items(), key=lambda kv: kv[1].start_ms):
            if step not in order:
                order.append(step)
    rows = [DiffRow(step, {v: cells[v].get(step) for v in flows}) for step in order]
    return TraceDiff(rows, sentence(scenario, flows, cells, stats, every or {}))


def sentence(
    scenario: str,
    flows: dict[str, SagaFlow],
    cells: dict[str, dict[str, Cell]],
    stats: dict[str, VariantStats],
    every: dict[str, list[SagaFlow]],
) -> str:
    if len(flows) < 2:
        only = next(iter(flows), "no style")
        return f"Only the {only} ran {scenario}: nothing to compare."
    o, c = "orchestration", "choreography"
    for style, other in ((o, c), (c, o)):
        alone = [s for s in cells[style] if s not in cells[other]]
        if alone:
            step = alone[0]
            return (
                f"Only the {style} runs {step} ({cells[style][step].label}); the {other}"
                f" {'never starts it' if other == o else 'never runs it'}."
            )
    late = _late_sentence(scenario, flows, stats, every)
    if late:
        return late
    tries = {v: sum(cell.attempts for cell in cells[v].values()) for v in (o, c)}
    if tries[o] != tries[c]:
        more, fewer = (o, c) if tries[o] > tries[c] else (c, o)
        steps = [s for s in cells[more] if cells[more][s].attempts > cells[fewer][s].attempts]
        return (
            f"The {STYLE_WORD[more]} {scenario} takes {tries[more]} attempts where the"
            f" {STYLE_WORD[fewer]} takes {tries[fewer]}: {more} retries {', '.join(steps)}."
        )
    return _speed_sentence(scenario, stats)


def _late_sentence(
    scenario: str,
    flows: dict[str, SagaFlow],
    stats: dict[str, VariantStats],
    every: dict[str, list[SagaFlow]],
) -> str | None:
    quiet = {v: stats[v].quiescence.median for v in flows if v in stats}
    tails = {v: quiet[v] - stats[v].latency.median for v in quiet}
    if len(tails) < 2:
        return None
    late = max(tails, key=lambda v: tails[v])
    other = next(v for v in tails if v != late)
    if tails[late] < QUIET_MS or tails[late] < 2 * tails[other]:
        return None
    # The saga that went on longest shows what runs late (the median one may not).
    candidates = every.get(late) or [flows[late]]
    what = _what_ran_late(max(candidates, key=lambda f: f.quiet_ms - f.outcome_ms))
    return (
        f"The {STYLE_WORD[late]} {scenario} is quiet only after {what}, at"
        f" {_time(quiet[late])} against {_time(quiet[other])}."
    )


def _what_ran_late(flow: SagaFlow) -> str:
    late = [a for a in flow.attempts if a.end_ms > flow.outcome_ms]
    if late:
        steps = sorted({a.step for a in late})
        kind = "abandoned " if any(a.outcome in ("hung", "cancelled") for a in late) else ""
        attempts = "attempts end" if len(late) > 1 else "attempt ends"
        return f"its {kind}{', '.join(steps)} {attempts}"
    messages = sorted({d.edge.label for d in flow.deliveries if d.end_ms > flow.outcome_ms})
    if len(messages) == 1:
        return f"a late redelivery of {messages[0]} is answered by the inbox"
    if messages:
        return f"late redeliveries of {', '.join(messages)} are answered by the inboxes"
    return "its last spans end"


def _speed_sentence(scenario: str, stats: dict[str, VariantStats]) -> str:
    o, c = stats["orchestration"].latency.median, stats["choreography"].latency.median
    fast = "choreography" if c <= o else "orchestration"
    ratio = max(o, c) / max(min(o, c), 0.001)
    if ratio < 1.2:
        return f"Same steps and attempts in both, in about the same time ({_time(o)}, {_time(c)})."
    return (
        f"Same steps and attempts in both; the {fast} is {ratio:.1f}x as fast"
        f" ({_time(min(o, c))} against {_time(max(o, c))}, median latency)."
    )


def _time(ms: float) -> str:
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{ms:.0f} ms"
