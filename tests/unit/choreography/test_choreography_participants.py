"""Participant logic on in-memory fakes: the chain, the cancel protocol, an operator's retry.

No broker and no files: the fake bus delivers each event in the order a test chooses, so an
interleaving (a cancel before or after a step's commit, a trigger overtaken) is exact.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from choreography.events import CANCEL_REQUESTED
from harness.compare.scenarios import ANTARCTICA, order
from shared.contracts import (
    Action,
    ActionResult,
    Phase,
    Reason,
    SagaPolicy,
    SagaStatus,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed
from tests.unit.choreography.fakes import FakeBus, fake_world

POLICY = SagaPolicy(deadline_s=600, attempt_timeout_s=5, compensation_attempts=2)
S = StepName


@pytest_asyncio.fixture
async def bus() -> AsyncIterator[FakeBus]:
    world = await fake_world(ORDERS_V1)
    await seed(world.domain)
    try:
        yield world
    finally:
        await world.domain.close()


async def states(bus: FakeBus, saga_id: str, phase: Phase) -> dict[str, StepStatus]:
    outcome = await bus.tracker.describe(saga_id)
    return {s.step: s.status for s in outcome.steps if s.phase is phase}


async def test_a_happy_saga_hops_service_to_service_and_completes(bus: FakeBus) -> None:
    await bus.start("s-1", order("o-1", points=100), POLICY, FaultPlan())
    await bus.run()

    outcome = await bus.tracker.describe("s-1")
    assert outcome.status is SagaStatus.COMPLETED
    assert bus.published == [
        "order.placed",
        "inventory.reserved",
        "payment.charged",
        "points.deducted",
        "shipping.created",
        "order.completed",
    ]


async def test_a_failure_hands_the_chain_back_only_to_the_services_that_acted(
    bus: FakeBus,
) -> None:
    await bus.start("s-1", order("o-1", points=0, address=ANTARCTICA), POLICY, FaultPlan())
    await bus.run()

    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED)
    assert bus.published[-4:] == [
        "shipping.failed",
        "shipping.cancelled",
        "payment.refunded",  # points was skipped: the chain jumps it
        "inventory.released",
    ]


async def test_a_cancel_before_the_trigger_arrives_fences_the_step_and_it_is_refused(
    bus: FakeBus,
) -> None:
    await bus.start("s-1", order("o-1", points=100), POLICY, FaultPlan())
    await bus.run(until=lambda: any(m.kind == "payment.charged" for m in bus.queue))
    await bus.cancel("s-1", Reason.CANCELLED_BY_CUSTOMER)
    await bus.deliver(bus.take(CANCEL_REQUESTED))  # overtakes payment.charged
    await bus.run()

    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.reason) == (
        SagaStatus.COMPENSATED,
        Reason.CANCELLED_BY_CUSTOMER,
    )
    forward = await states(bus, "s-1", Phase.FORWARD)
    assert forward[S.DEDUCT_POINTS] is StepStatus.REJECTED
    assert "points.refused" in bus.published and "points.deducted" not in bus.published
    assert list(await states(bus, "s-1", Phase.COMPENSATE)) == [
        S.REFUND_PAYMENT,
        S.RELEASE_INVENTORY,
    ]
    assert (await bus.domain.points.balances())["alice"] == 5_000


async def test_a_pivot_that_committed_before_the_cancel_wins_and_the_saga_completes(
    bus: FakeBus,
) -> None:
    await bus.start("s-1", order("o-1", points=100), POLICY, FaultPlan())
    await bus.run(until=lambda: any(m.kind == "shipping.created" for m in bus.queue))
    shipped = bus.take("shipping.created")  # committed, not yet known to anyone
    await bus.cancel("s-1", Reason.CANCELLED_BY_CUSTOMER)
    await bus.deliver(bus.take(CANCEL_REQUESTED))
    await bus.deliver(shipped)
    await bus.run()

    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.reason) == (SagaStatus.COMPLETED, None)
    assert [s.status for s in await bus.domain.shipping.shipments()] == ["created"]
    assert not any(kind.endswith(".refused") for kind in bus.published)


async def test_a_pivot_fenced_before_it_commits_is_refused_and_the_saga_compensates(
    bus: FakeBus,
) -> None:
    await bus.start("s-1", order("o-1", points=100), POLICY, FaultPlan())
    await bus.run(until=lambda: any(m.kind == "points.deducted" for m in bus.queue))
    await bus.cancel("s-1", Reason.TIMED_OUT)
    await bus.deliver(bus.take(CANCEL_REQUESTED))
    await bus.run()

    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    assert (await states(bus, "s-1", Phase.FORWARD))[S.CREATE_SHIPMENT] is StepStatus.REJECTED
    assert await bus.domain.shipping.shipments() == []


async def test_a_trigger_delivered_twice_after_the_fence_is_refused_once(bus: FakeBus) -> None:
    await bus.start("s-1", order("o-1", points=100), POLICY, FaultPlan())
    await bus.run(until=lambda: any(m.kind == "inventory.reserved" for m in bus.queue))
    trigger = bus.take("inventory.reserved")
    await bus.cancel("s-1", Reason.CANCELLED_BY_CUSTOMER)
    await bus.deliver(bus.take(CANCEL_REQUESTED))
    await bus.deliver(trigger)
    await bus.deliver(trigger)
    await bus.run()

    assert bus.published.count("payment.refused") == 1
    assert await bus.domain.payment.charges() == []


async def test_an_operators_retry_runs_the_failed_compensation_in_the_next_round(
    bus: FakeBus,
) -> None:
    broken = FaultPlan(rules=[FaultRule(step=S.REFUND_PAYMENT, transient=1_000)])
    await bus.start("s-1", order("o-1", points=100, address=ANTARCTICA), POLICY, broken)
    await bus.run()
    assert (await bus.tracker.describe("s-1")).failed_compensations == [S.REFUND_PAYMENT]

    action = await bus.tracker.retry_compensation("s-1", "ops")
    await bus.run()

    assert (action.result, action.round) == (ActionResult.PENDING, 1)
    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.failed_compensations) == (SagaStatus.COMPENSATED, [])
    assert [a.result for a in outcome.actions] == [ActionResult.COMPENSATED]
    assert bus.published.count("inventory.released") == 1  # no hand-back after a retry


async def test_an_operators_retry_of_the_step_past_the_pivot_runs_it_in_the_next_round(
    bus: FakeBus,
) -> None:
    refused = FaultPlan(rules=[FaultRule(step=S.COMPLETE_ORDER, permanent=True)])
    await bus.start("s-1", order("o-1", points=100), POLICY, refused)
    await bus.run()
    waiting = await bus.tracker.describe("s-1")
    assert (waiting.status, waiting.failed_step) == (
        SagaStatus.NEEDS_INTERVENTION,
        S.COMPLETE_ORDER,
    )

    action = await bus.tracker.retry_step("s-1", "ops")
    await bus.run()

    assert (action.action, action.result, action.round) == (
        Action.RETRY_STEP,
        ActionResult.PENDING,
        1,
    )
    outcome = await bus.tracker.describe("s-1")
    assert (outcome.status, outcome.failed_step) == (SagaStatus.COMPLETED, None)
    assert [(a.action, a.result) for a in outcome.actions] == [
        (Action.RETRY_STEP, ActionResult.COMPLETED)
    ]
    assert bus.published[-2:] == ["order.retry_step", "order.completed"]
    (record,) = await bus.domain.orders.records()
    assert record.status is SagaStatus.COMPLETED
    assert [c.refunded_cents for c in await bus.domain.payment.charges()] == [0]
