"""Only the tracker notices a saga nobody moves: the deadline cancels it, and the saga is
not counted as ended until every compensation it needs is confirmed."""

from __future__ import annotations

import pytest

from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import Reason, SagaStatus, ServiceName, StepName, StepStatus
from shared.faults import FaultPlan
from tests.integration.choreography.choreography_support import (
    QUICK,
    ROUTES,
    eventually,
    make_order,
    saga_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SHORT = QUICK.model_copy(update={"deadline_s": 1.0})


async def _cancelled(runtime: Faulty[ChoreographyRuntime], sid: str) -> bool:
    return (await runtime.describe(sid)).reason is Reason.TIMED_OUT


async def _order_status(runtime: Faulty[ChoreographyRuntime], sid: str) -> SagaStatus:
    return next(r.status for r in await runtime.domain.orders.records() if r.saga_id == sid)


async def test_consumer_paused_past_the_deadline_gets_the_saga_cancelled_and_compensated(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    durable = runtime.runtime.settings.participant_spec(ServiceName.PAYMENT, ROUTES).durable
    await runtime.runtime.bus.pause(durable, 2.5)
    sid = saga_id("paused")

    await runtime.start_saga(sid, make_order(sid, points=100), FaultPlan(), SHORT)
    await eventually(lambda: _cancelled(runtime, sid))

    live = await runtime.describe(sid)
    assert live.status is SagaStatus.RUNNING  # cancelled, but the refund is not confirmed yet
    assert await _order_status(runtime, sid) is SagaStatus.RUNNING
    outcome = await runtime.wait(sid, 10)
    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    steps = {(s.step, s.phase.value): s.status for s in outcome.steps}
    assert steps[(StepName.CHARGE_PAYMENT, "forward")] is StepStatus.REJECTED
    assert (StepName.REFUND_PAYMENT, "compensate") not in steps  # refused: nothing to undo
    assert steps[(StepName.RELEASE_INVENTORY, "compensate")] is StepStatus.DONE
    assert await runtime.domain.inventory.reserved() == {}
    assert [c for c in await runtime.domain.payment.charges() if c.saga_id == sid] == []
    assert await _order_status(runtime, sid) is SagaStatus.COMPENSATED


async def test_stopped_service_is_noticed_by_the_deadline_and_compensates_once_back(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    points = runtime.runtime.host(ServiceName.POINTS)
    await points.stop()
    sid = saga_id("stopped")

    await runtime.start_saga(sid, make_order(sid, points=100), FaultPlan(), SHORT)
    await eventually(lambda: _cancelled(runtime, sid))
    assert (await runtime.describe(sid)).status is SagaStatus.RUNNING
    await points.start()
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    assert (await runtime.domain.points.balances())["alice"] == 5_000
    charge = next(c for c in await runtime.domain.payment.charges() if c.saga_id == sid)
    assert charge.refunded_cents == charge.amount_cents
    assert await runtime.domain.inventory.reserved() == {}


async def test_saga_past_its_pivot_ignores_the_deadline_and_completes(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("pivot")
    durable = runtime.runtime.settings.participant_spec(ServiceName.ORDERS, ROUTES).durable
    await runtime.runtime.bus.pause(durable, 2.0)  # complete_order waits past the deadline

    await runtime.start_saga(sid, make_order(sid, points=100), FaultPlan(), SHORT)
    outcome = await runtime.wait(sid, 10)

    assert outcome.status is SagaStatus.COMPLETED
    assert outcome.reason is None
    assert [s.step for s in outcome.steps if s.phase.value == "compensate"] == []
