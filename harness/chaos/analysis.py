"""What a chaos run found, per variant: nothing lost, nothing stuck, nothing broken — or what was.

`analyse` turns a variant's run (harness/chaos/drive.py) and its reference into a `VariantReport`:
sagas terminal out of submitted (a saga ended by its business deadline counts apart: a valid
outcome), the stuck ones by step, the lost ones, the invariants, double charges, duplicate or
lost events, outcome differences against the reference, for each kill the time until the
backlog it caused was drained, latency percentiles before, during and after the kills, and
completions per second for the chart.
"""

from __future__ import annotations

import math
from collections import Counter

from pydantic import BaseModel, ConfigDict

from harness.chaos.drive import KillRecord, SagaRecord, VariantRun
from harness.compare.invariants import check_invariants
from harness.deploy.check import in_flight
from harness.report.traces import percentile
from shared.contracts import OrderRequest, Reason, SagaOutcome, SagaStatus
from shared.definition import SagaDefinition
from shared.seed import SeedData


class _Doc(BaseModel):
    model_config = ConfigDict(frozen=True)


class KillReport(_Doc):
    kind: str
    target: str
    pid: int | None
    at_s: float | None
    """Seconds after the run started."""
    down_s: float
    back_s: float | None
    drained_s: float | None
    """Seconds from the kill until every saga in flight or due meanwhile had ended."""


class Latency(_Doc):
    window: str
    sagas: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None


class Difference(_Doc):
    index: int
    kind: str
    saga_id: str
    reference: str
    under_fire: str


class EventAudit(_Doc):
    checked: bool
    duplicates: int = 0
    lost: int = 0
    note: str = ""


class VariantReport(_Doc):
    variant: str
    rate: float
    submitted: int
    accepted: int
    terminal: int
    timed_out: int
    stuck_by_step: dict[str, int]
    lost: list[str]
    invariants: dict[str, bool]
    double_charges: int
    events: EventAudit
    differences: list[Difference]
    timed_out_differences: int
    kills: list[KillReport]
    latency: list[Latency]
    completions_per_s: list[int]
    restarts: dict[str, int]
    crash_point_deaths: int
    duration_s: float

    @property
    def failures(self) -> list[str]:
        """Everything that makes the run fail (exit 1), in words."""
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} sagas lost")
        if self.stuck_by_step:
            found.append(f"{sum(self.stuck_by_step.values())} sagas stuck")
        found += [f"invariant {name} violated" for name, ok in self.invariants.items() if not ok]
        if self.double_charges:
            found.append(f"{self.double_charges} double charges")
        if self.events.duplicates or self.events.lost:
            found.append(f"{self.events.duplicates} duplicate, {self.events.lost} lost events")
        if self.differences:
            found.append(f"{len(self.differences)} outcomes differ from the reference")
        return found


def label(outcome: SagaOutcome | None) -> str:
    if outcome is None:
        return "unknown"
    return outcome.status.value + (f"/{outcome.reason!s}" if outcome.reason else "")


def analyse(
    run: VariantRun,
    reference: dict[int, str],
    seed: SeedData,
    events: EventAudit,
    definition: SagaDefinition,
) -> VariantReport:
    """The variant's findings; ``reference`` is each order's outcome without kills."""
    sagas = run.sagas
    accepted = [s for s in sagas if s.submitted_at is not None]
    terminal = [s for s in accepted if s.outcome is not None and s.outcome.status.terminal]
    timed_out = [
        s for s in terminal if s.outcome is not None and s.outcome.reason is Reason.TIMED_OUT
    ]
    lost = [s.saga_id for s in sagas if s.submitted_at is None or s.outcome is None]
    stuck = Counter(
        in_flight(s.outcome) or "before its first step"
        for s in accepted
        if s.outcome is not None and not s.outcome.status.terminal
    )
    differences, timed_out_diffs = _differences(run, reference)
    return VariantReport(
        variant=run.variant,
        rate=run.rate,
        submitted=len(sagas),
        accepted=len(accepted),
        terminal=len(terminal),
        timed_out=len(timed_out),
        stuck_by_step=dict(stuck),
        lost=lost,
        invariants=_invariants(run, seed, definition),
        double_charges=_double_charges(run),
        events=events,
        differences=differences,
        timed_out_differences=timed_out_diffs,
        kills=[_kill(run, k) for k in run.kills],
        latency=_latencies(run),
        completions_per_s=_per_second(run),
        restarts=run.restarts,
        crash_point_deaths=_crash_deaths(run),
        duration_s=run.finished_at - run.started_at,
    )


def _invariants(run: VariantRun, seed: SeedData, definition: SagaDefinition) -> dict[str, bool]:
    assert run.state is not None
    pairs: list[tuple[OrderRequest, SagaOutcome]] = []
    for saga in run.sagas:
        order = saga.order.case.order
        outcome = saga.outcome or SagaOutcome(
            saga_id=saga.saga_id, order_id=order.order_id, status=SagaStatus.RUNNING
        )
        pairs.append((order, run.namespace.outcome(outcome)))
    return check_invariants(definition, seed, run.state, pairs)


def _double_charges(run: VariantRun) -> int:
    assert run.state is not None
    per_saga = Counter(charge.saga_id for charge in run.state.charges)
    totals = {s.saga_id: s.order.case.order.total_cents for s in run.sagas}
    extra = sum(count - 1 for count in per_saga.values() if count > 1)
    wrong = sum(1 for c in run.state.charges if c.amount_cents != totals.get(c.saga_id))
    return extra + wrong


def _differences(run: VariantRun, reference: dict[int, str]) -> tuple[list[Difference], int]:
    """Outcomes unlike the reference; one ended by its deadline is valid, counted apart."""
    found, timed_out = [], 0
    for saga in run.sagas:
        expected = reference.get(saga.order.index)
        got = label(saga.outcome)
        if expected is None or got == expected or saga.outcome is None:
            continue
        if not saga.outcome.status.terminal:
            continue  # stuck: reported as such
        if saga.outcome.reason is Reason.TIMED_OUT:
            timed_out += 1
            continue
        found.append(
            Difference(
                index=saga.order.index,
                kind=saga.order.kind,
                saga_id=saga.saga_id,
                reference=expected,
                under_fire=got,
            )
        )
    return found, timed_out


def _kill(run: VariantRun, record: KillRecord) -> KillReport:
    start = run.started_at
    drained = _drained(run.sagas, record)
    return KillReport(
        kind=record.kill.kind,
        target=record.target,
        pid=record.pid,
        at_s=None if record.killed_at is None else record.killed_at - start,
        down_s=record.kill.down_s,
        back_s=None if record.back_at is None else record.back_at - start,
        drained_s=None
        if drained is None or record.killed_at is None
        else drained - record.killed_at,
    )


def _drained(sagas: list[SagaRecord], record: KillRecord) -> float | None:
    """When the last saga in flight at the kill, or due before the process was back, ended."""
    if record.killed_at is None or record.back_at is None:
        return None
    affected = [
        s
        for s in sagas
        if s.due_at <= record.back_at and (s.ended_at is None or s.ended_at >= record.killed_at)
    ]
    if any(s.ended_at is None for s in affected):
        return None
    return max((s.ended_at for s in affected if s.ended_at is not None), default=record.back_at)


def _latencies(run: VariantRun) -> list[Latency]:
    """Before the first kill, while any target was down or recovering, after the last came back."""
    kills = [k for k in run.kills if k.killed_at is not None]
    first = min((k.killed_at for k in kills if k.killed_at is not None), default=math.inf)
    last = max((k.back_at or math.inf for k in kills), default=-math.inf)
    windows: dict[str, list[float]] = {"before": [], "during": [], "after": []}
    for saga in run.sagas:
        latency = saga.latency_s
        if latency is None:
            continue
        window = "before" if saga.due_at < first else "during" if saga.due_at <= last else "after"
        windows[window].append(latency * 1000)
    return [
        Latency(
            window=name,
            sagas=len(values),
            p50_ms=percentile(values, 50) if values else None,
            p95_ms=percentile(values, 95) if values else None,
            p99_ms=percentile(values, 99) if values else None,
        )
        for name, values in windows.items()
    ]


def _per_second(run: VariantRun) -> list[int]:
    ends = [s.ended_at - run.started_at for s in run.sagas if s.ended_at is not None]
    if not ends:
        return []
    counts = [0] * (int(max(ends)) + 1)
    for moment in ends:
        counts[int(moment)] += 1
    return counts


def _crash_deaths(run: VariantRun) -> int:
    """Restarts no kill explains: the crash points of the mix, dying for real."""
    killed = Counter(k.target for k in run.kills if k.killed_at is not None)
    return sum(max(0, n - killed.get(kind, 0)) for kind, n in run.restarts.items())
