"""Each flaw of the seed choreography, and the test showing it is fixed (docs/choreography.md)."""

from __future__ import annotations

import pytest

from choreography.broker import SAGA_STREAM
from choreography.events import Event, subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import (
    Phase,
    Reason,
    SagaStatus,
    ServiceName,
    StepId,
    StepName,
    StepState,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from tests.integration.choreography.choreography_support import (
    ANTARCTICA,
    QUICK,
    eventually,
    make_order,
    saga_id,
    stream_count,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _step_log(
    runtime: Faulty[ChoreographyRuntime], service: ServiceName, sid: str
) -> list[str]:
    """What the service did for the saga (a skipped step is recorded as such, not as acting)."""
    store = runtime.domain.services[service].store
    rows = await store.query(
        "SELECT step FROM step_log WHERE saga_id = ? AND status <> 'skipped'", (sid,)
    )
    return sorted(row["step"] for row in rows)


def _compensations(steps: list[StepState]) -> list[StepId]:
    return [s.step for s in steps if s.phase is Phase.COMPENSATE]


async def test_compensation_goes_only_to_the_services_that_acted(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("acted")
    order = make_order(sid, points=0, address=ANTARCTICA)  # points never act for this order

    await runtime.start_saga(sid, order, FaultPlan(), QUICK)
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED)
    assert _compensations(outcome.steps) == [
        StepName.CANCEL_SHIPMENT,
        StepName.REFUND_PAYMENT,
        StepName.RELEASE_INVENTORY,
    ]
    assert await _step_log(runtime, ServiceName.POINTS, sid) == []
    assert await stream_count(runtime, subject("points.restored", sid)) == 0


async def test_early_failure_never_reaches_the_services_after_it(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("declined")

    order = make_order(sid, points=100, card="card-0002")
    await runtime.start_saga(sid, order, FaultPlan(), QUICK)
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        StepName.CHARGE_PAYMENT,
    )
    assert _compensations(outcome.steps) == [StepName.REFUND_PAYMENT, StepName.RELEASE_INVENTORY]
    assert await _step_log(runtime, ServiceName.POINTS, sid) == []
    assert await _step_log(runtime, ServiceName.SHIPPING, sid) == []


async def test_events_carry_the_data_the_next_service_needs(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("carried")
    order = make_order(sid, points=100)
    faults = FaultPlan(seed=7, rules=[FaultRule(step=StepName.CREATE_SHIPMENT, delay_ms=1)])

    await runtime.start_saga(sid, order, faults, QUICK)
    await runtime.wait(sid, 10)
    raw = await runtime.runtime.bus.js.get_last_msg(SAGA_STREAM, subject("payment.charged", sid))
    event = Event.model_validate_json(raw.data or b"")

    assert (event.order, event.policy, event.definition) == (order, QUICK, ORDERS_V1.ref)
    assert "faults" not in (raw.data or b"").decode()  # test hooks never ride in production events
    assert event.trail == (StepName.RESERVE_INVENTORY, StepName.CHARGE_PAYMENT)
    assert event.started_at > 0


async def test_saga_is_not_counted_ended_before_its_compensations_are_confirmed(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    slow_refund = FaultPlan(rules=[FaultRule(step=StepName.REFUND_PAYMENT, delay_ms=800)])
    sid = saga_id("slow")

    await runtime.start_saga(
        sid, make_order(sid, points=100, address=ANTARCTICA), slow_refund, QUICK
    )

    async def refund_in_flight() -> bool:
        live = await runtime.describe(sid)
        states = {s.step: s.status for s in live.steps}
        return states.get(StepName.REFUND_PAYMENT) is StepStatus.RUNNING

    await eventually(refund_in_flight)
    live = await runtime.describe(sid)
    assert live.status is SagaStatus.RUNNING
    assert live.reason is Reason.SHIPMENT_FAILED
    record = next(r for r in await runtime.domain.orders.records() if r.saga_id == sid)
    assert record.status is SagaStatus.RUNNING
    outcome = await runtime.wait(sid, 10)
    assert outcome.status is SagaStatus.COMPENSATED
    assert {s.step: s.status for s in outcome.steps}[StepName.RELEASE_INVENTORY] is StepStatus.DONE


async def test_compensation_that_never_succeeds_is_queued_for_a_person(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    broken = FaultPlan(rules=[FaultRule(step=StepName.RESTORE_POINTS, transient=1_000)])
    sid = saga_id("stuck")

    order = make_order(sid, points=100, address=ANTARCTICA)
    await runtime.start_saga(sid, order, broken, QUICK)
    outcome = await runtime.wait(sid, 10)

    assert outcome.status is SagaStatus.NEEDS_INTERVENTION
    assert outcome.failed_compensations == [StepName.RESTORE_POINTS]
    attempts = {s.step: s.attempts for s in outcome.steps if s.phase.value == "compensate"}
    assert attempts[StepName.RESTORE_POINTS] == QUICK.compensation_attempts
    assert attempts[StepName.REFUND_PAYMENT] == 1  # the chain went on past the failure
    queue = await runtime.runtime.interventions()
    assert [(i.saga_id, i.failed_compensations) for i in queue] == [
        (sid, [StepName.RESTORE_POINTS])
    ]
    await runtime.runtime.tracker.resolve(sid, "ops", "points restored by hand")
    assert await runtime.runtime.interventions() == []


async def test_customer_cancel_after_the_pivot_is_ignored(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    slow_completion = FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, delay_ms=500)])
    sid = saga_id("late-cancel")
    await runtime.start_saga(sid, make_order(sid, points=100), slow_completion, QUICK)

    async def completing() -> bool:
        states = {s.step: s.status for s in (await runtime.describe(sid)).steps}
        return states[StepName.COMPLETE_ORDER] is StepStatus.RUNNING

    await eventually(completing)
    await runtime.cancel_saga(sid)
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPLETED, None)
    assert await stream_count(runtime, subject("order.cancel_requested", sid)) == 0


async def test_customer_cancel_tombstones_the_step_in_flight(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    slow_charge = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=600)])
    sid = saga_id("cancel")
    await runtime.start_saga(sid, make_order(sid, points=100), slow_charge, QUICK)

    async def charging() -> bool:
        states = {s.step: s.status for s in (await runtime.describe(sid)).steps}
        return states[StepName.CHARGE_PAYMENT] is StepStatus.RUNNING

    await eventually(charging)
    await runtime.cancel_saga(sid)
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.reason) == (
        SagaStatus.COMPENSATED,
        Reason.CANCELLED_BY_CUSTOMER,
    )
    states = {(s.step, s.phase.value): s.status for s in outcome.steps}
    assert states[(StepName.CHARGE_PAYMENT, "forward")] is StepStatus.REJECTED
    assert (StepName.REFUND_PAYMENT, "compensate") not in states  # refused: nothing to undo
    assert [c for c in await runtime.domain.payment.charges() if c.saga_id == sid] == []
    assert await runtime.domain.inventory.reserved() == {}
