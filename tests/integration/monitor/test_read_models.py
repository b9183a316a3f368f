"""Both read APIs over real servers: the same sagas, the same answers, in one view model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from harness.compare.runner import SagaRun, run_saga
from harness.compare.scenarios import SagaCase, order
from harness.session import VARIANTS, Session, open_session
from monitor.settings import MonitorSettings
from monitor.wiring import read_model
from shared.contracts import SagaPolicy, StepName
from shared.faults import FaultPlan, FaultRule
from shared.read_model import AlertKind, ListedStatus, PageKey, ReadModel, SagaQuery
from shared.seed import seed
from tests.integration.monitor.monitor_sagas import POLICY, REFUND_FAILS, SHIPMENT_FAILS

pytestmark = pytest.mark.asyncio(loop_scope="module")

HANGING = SagaPolicy(deadline_s=60.0, attempt_timeout_s=60.0)
CASES = {
    "happy": SagaCase(order("mon-happy")),
    "compensated": SagaCase(order("mon-comp"), FaultPlan(rules=[SHIPMENT_FAILS])),
    "stuck": SagaCase(order("mon-stuck"), FaultPlan(rules=[SHIPMENT_FAILS, REFUND_FAILS])),
}


@dataclass
class Ran:
    session: Session
    models: dict[str, ReadModel]
    runs: dict[tuple[str, str], SagaRun]
    hanging: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ran(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ran]:
    """Three finished sagas and one hanging in charge_payment, on both styles."""
    folder = tmp_path_factory.mktemp("monitor")
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        models = {v: read_model(r, MonitorSettings()) for v, r in session.runtimes.items()}
        runs = {}
        for variant, runtime in session.drivers.items():
            await seed(runtime.domain)
            hang = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, hang=True)])
            await runtime.start_saga("mon-hang-1", order("mon-hang"), hang, HANGING)
            for name, case in CASES.items():
                runs[variant, name] = await run_saga(
                    runtime, case, POLICY, f"{case.order.order_id}-1", 30
                )
        await caught_up(models["orchestration"])
        yield Ran(session, models, runs, "mon-hang-1")


async def caught_up(model: ReadModel, timeout_s: float = 20) -> None:
    """Temporal's visibility lags a workflow's close a little: wait until it lists all three."""
    deadline = time.monotonic() + timeout_s
    ended = SagaQuery(statuses=(ListedStatus.COMPLETED, ListedStatus.COMPENSATED))
    while len(await model.list_sagas(ended, time.time())) < 2 or not await model.interventions():
        assert time.monotonic() < deadline, "visibility never listed the ended sagas"
        await asyncio.sleep(0.05)


async def listed(model: ReadModel, **query: object) -> list[tuple[str, ListedStatus]]:
    rows = await model.list_sagas(SagaQuery.model_validate(query), time.time())
    return [(r.saga_id, r.status) for r in rows]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_list_shows_the_open_saga_first_then_the_latest_ends(
    ran: Ran, variant: str
) -> None:
    rows = await listed(ran.models[variant])

    # A saga waiting for an operator is still open (its workflow stays open): newest start
    # first among the open ones.
    assert rows == [
        ("mon-stuck-1", ListedStatus.NEEDS_INTERVENTION),
        ("mon-hang-1", ListedStatus.RUNNING),
        ("mon-comp-1", ListedStatus.COMPENSATED),
        ("mon-happy-1", ListedStatus.COMPLETED),
    ]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_filters_mean_the_same_in_both_styles(ran: Ran, variant: str) -> None:
    model = ran.models[variant]

    assert await listed(model, statuses=["NEEDS_INTERVENTION", "COMPLETED"]) == [
        ("mon-stuck-1", ListedStatus.NEEDS_INTERVENTION),
        ("mon-happy-1", ListedStatus.COMPLETED),
    ]
    assert [s for s, _ in await listed(model, step="charge_payment")] == ["mon-hang-1"]
    assert [s for s, _ in await listed(model, step="refund_payment")] == ["mon-stuck-1"]
    assert [s for s, _ in await listed(model, search="mon-comp")] == ["mon-comp-1"]
    assert [s for s, _ in await listed(model, search="mon-comp-1")] == ["mon-comp-1"]
    assert await listed(model, min_age_s=3600) == []
    assert len(await listed(model, max_age_s=3600)) == 4


@pytest.mark.parametrize("variant", VARIANTS)
async def test_pages_continue_after_the_last_row(ran: Ran, variant: str) -> None:
    model = ran.models[variant]
    first = await model.list_sagas(SagaQuery(limit=2), time.time())
    rest = await model.list_sagas(SagaQuery(after=PageKey.of(first[-1])), time.time())

    assert [r.saga_id for r in [*first, *rest]] == [
        "mon-stuck-1",
        "mon-hang-1",
        "mon-comp-1",
        "mon-happy-1",
    ]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_saga_shows_forward_and_compensation_steps_with_times(
    ran: Ran, variant: str
) -> None:
    detail = await ran.models[variant].saga("mon-comp-1")

    assert detail is not None
    steps = {(s.step, s.phase): s for s in detail.steps}
    shipment = steps["create_shipment", "forward"]
    refund = steps["refund_payment", "compensate"]
    assert (shipment.status, refund.status) == ("failed", "done")
    assert refund.attempts == 1
    assert shipment.duration_s is not None and refund.duration_s is not None
    assert shipment.started_at is not None and refund.started_at is not None
    assert detail.row.started_at <= shipment.started_at <= refund.started_at
    assert detail.deadline_at == pytest.approx(detail.row.started_at + POLICY.deadline_s, abs=1)
    assert len(detail.entries) >= 8


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_saga_carries_the_trace_id_of_its_root_span(ran: Ran, variant: str) -> None:
    detail = await ran.models[variant].saga("mon-happy-1")

    assert detail is not None
    assert detail.trace_id == ran.runs[variant, "happy"].trace_id


async def test_each_style_shows_its_own_raw_record(ran: Ran) -> None:
    chor = await ran.models["choreography"].saga("mon-happy-1")
    orch = await ran.models["orchestration"].saga("mon-happy-1")

    assert chor is not None and orch is not None
    assert [e.name for e in chor.entries][:2] == ["order.placed", "inventory.reserved"]
    assert chor.entries[-1].name == "order.completed"
    assert orch.entries[0].name == "WorkflowExecutionStarted"
    assert orch.entries[-1].name == "WorkflowExecutionCompleted"
    assert any("charge_payment" in e.detail for e in orch.entries)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_queue_lists_the_saga_whose_refund_failed(ran: Ran, variant: str) -> None:
    queue = await ran.models[variant].interventions()

    assert [(q.row.saga_id, q.failed_compensations) for q in queue] == [
        ("mon-stuck-1", ["refund_payment"])
    ]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_quiet_saga_and_one_past_its_deadline_raise_alerts(ran: Ran, variant: str) -> None:
    model = ran.models[variant]
    now = time.time()

    assert await model.alerts(now, quiet_s=600, warn_s=5) == []
    later = await model.alerts(now + 70, quiet_s=10, warn_s=5)
    assert [(a.row.saga_id, a.kinds) for a in later] == [
        ("mon-hang-1", (AlertKind.NO_PROGRESS, AlertKind.DEADLINE_PASSED))
    ]
    near = await model.alerts(later[0].row.started_at + 57, quiet_s=600, warn_s=5)
    assert [a.kinds for a in near] == [(AlertKind.DEADLINE_NEAR,)]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_counters_count_what_is_in_flight_and_what_ended(ran: Ran, variant: str) -> None:
    counters = await ran.models[variant].counters(time.time())

    # The saga waiting for an operator is not in flight; it counts as NEEDS_INTERVENTION when
    # it got there, though its workflow (or tracker row) stays open until someone acts.
    assert counters.in_flight == 1
    assert counters.ended_last_minute == {
        ListedStatus.COMPLETED: 1,
        ListedStatus.COMPENSATED: 1,
        ListedStatus.NEEDS_INTERVENTION: 1,
    }
    assert len(counters.latencies_s) == 3
    assert all(0 < took < 30 for took in counters.latencies_s)
    queue = await ran.models[variant].interventions()
    waited = ran.runs[variant, "stuck"]
    assert [(i.row.saga_id, i.failed_compensations) for i in queue] == [
        (waited.saga_id, ["refund_payment"])
    ]
    assert queue[0].row.started_at < queue[0].since < time.time()


@pytest.mark.parametrize("variant", VARIANTS)
async def test_an_unknown_saga_is_none(ran: Ran, variant: str) -> None:
    assert await ran.models[variant].saga("never-started") is None
