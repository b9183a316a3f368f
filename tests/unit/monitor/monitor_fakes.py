"""Hand-written fakes of a variant's read API and of a runtime's operator methods."""

from __future__ import annotations

from dataclasses import dataclass, field

from monitor.app import create_app, fixed
from monitor.board import Board
from monitor.security import Guard
from monitor.settings import MonitorSettings
from shared.definitions import ORDERS_V1
from shared.read_model import (
    ActionView,
    Alert,
    AlertKind,
    Counters,
    InterventionView,
    ListedStatus,
    PageKey,
    RawEntry,
    SagaDetail,
    SagaQuery,
    SagaRow,
    StepView,
)

NOW = 1_800_000_000.0


def row(variant: str, saga_id: str, status: ListedStatus, age_s: float, **extra: object) -> SagaRow:
    ended = None if status.in_flight else NOW - age_s + 1.0
    fields: dict[str, object] = {
        "variant": variant,
        "saga_id": saga_id,
        "order_id": saga_id.rsplit("-", 1)[0],
        "status": status,
        "started_at": NOW - age_s,
        "ended_at": ended,
    }
    fields.update(extra)
    return SagaRow.model_validate(fields)


@dataclass
class FakeReadModel:
    """Applies the query to a list of rows, as a real read API would."""

    variant: str
    rows: list[SagaRow]
    alerts_found: list[Alert] = field(default_factory=list)
    queue: list[InterventionView] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    queries: list[SagaQuery] = field(default_factory=list)
    broken: bool = False
    actions: dict[str, list[ActionView]] = field(default_factory=dict)
    """Operator actions recorded per saga id."""
    failures: dict[str, dict[str, object]] = field(default_factory=dict)
    """What failed, per saga id: ``failed_step``, ``failed_compensations``."""

    async def list_sagas(self, query: SagaQuery, now: float) -> list[SagaRow]:
        if self.broken:
            raise ConnectionError("engine unreachable at 127.0.0.1:1")
        self.queries.append(query)
        found = [r for r in self.rows if _matches(r, query, now)]
        found.sort(key=lambda r: PageKey.of(r).sort_key(), reverse=True)
        return found[: query.limit]

    async def saga(self, saga_id: str) -> SagaDetail | None:
        match = next((r for r in self.rows if r.saga_id == saga_id), None)
        if match is None:
            return None
        step = StepView(
            step="reserve_inventory",
            phase="forward",
            status="done",
            attempts=1,
            started_at=match.started_at,
            ended_at=match.started_at + 0.02,
        )
        return SagaDetail(
            row=match,
            steps=[step],
            entries=[RawEntry(at=match.started_at, name="order.placed", detail="<b>x</b>")],
            entries_title="stream events",
            trace_id="ab" * 16,
            actions=self.actions.get(saga_id, []),
            **self.failures.get(saga_id, {}),
        )

    async def interventions(self) -> list[InterventionView]:
        return self.queue

    async def alerts(self, now: float, quiet_s: float, warn_s: float) -> list[Alert]:
        return self.alerts_found

    async def counters(self, now: float) -> Counters:
        return Counters(
            variant=self.variant,
            in_flight=sum(r.status.in_flight for r in self.rows),
            ended_last_minute={ListedStatus.COMPLETED: 3},
            latencies_s=self.latencies,
        )


def _matches(r: SagaRow, q: SagaQuery, now: float) -> bool:
    age = now - r.started_at
    return (
        (not q.statuses or r.status in q.statuses)
        and (q.step is None or r.step == q.step)
        and (q.min_age_s is None or age >= q.min_age_s)
        and (q.max_age_s is None or age <= q.max_age_s)
        and (q.search is None or q.search in (r.saga_id, r.order_id))
        and (q.after is None or PageKey.of(r).sort_key() < q.after.sort_key())
    )


@dataclass
class FakeOperator:
    """Records what operators asked for."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    refusal: Exception | None = None
    """What the runtime raises instead (a saga that no longer waits, an unknown one)."""

    async def retry_compensation(self, saga_id: str, who: str) -> str:
        if self.refusal is not None:
            raise self.refusal
        self.calls.append(("retry", saga_id, who))
        return "compensated"

    async def retry_step(self, saga_id: str, who: str) -> str:
        if self.refusal is not None:
            raise self.refusal
        self.calls.append(("retry_step", saga_id, who))
        return "completed"

    async def resolve(self, saga_id: str, who: str, note: str) -> str:
        if self.refusal is not None:
            raise self.refusal
        self.calls.append(("resolve", saga_id, who, note))
        return "resolved"


def stuck_alert(saga: SagaRow) -> Alert:
    return Alert(
        row=saga,
        kinds=(AlertKind.NO_PROGRESS, AlertKind.DEADLINE_PASSED),
        last_progress_at=NOW - 30,
        deadline_at=NOW - 5,
    )


def build(
    models: list[FakeReadModel],
    operators: dict[str, FakeOperator] | None = None,
    guard: Guard | None = None,
) -> object:
    board = Board(
        {m.variant: m for m in models},
        MonitorSettings(trace_url="http://traces.example/trace/{trace_id}", cache_s=0),
        operators=operators,
        clock=lambda: NOW,
        steps=ORDERS_V1.steps,
    )
    return create_app(fixed(board), guard or Guard(loopback=True))
