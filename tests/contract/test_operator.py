"""A saga that needs intervention waits for an operator, identically in both styles.

Its outcome is settled (``wait`` returns it) while it stays open: an operator may retry the
failed compensations (a fresh budget, the next round: a fault meant for the saga's own run is
gone) or mark it resolved with a note. Every action is recorded in the saga's description, and
the invariants hold before and after.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from harness.compare.faulty import Faulty
from harness.compare.invariants import check_invariants
from harness.compare.scenarios import ANTARCTICA, FAST, order
from shared.contracts import (
    Action,
    ActionResult,
    OrderRequest,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.runtime import NotAwaitingOperator, SagaRuntime
from shared.seed import DEFAULT_SEED, seed

pytestmark = pytest.mark.asyncio(loop_scope="module")

REFUND = StepName.REFUND_PAYMENT


def refund_down(rounds: int) -> FaultPlan:
    """The refund fails for good in the saga's own run, and in ``rounds - 1`` retries."""
    return FaultPlan(rules=[FaultRule(step=REFUND, transient=1_000, rounds=rounds)])


async def stuck_refund(runtime: Faulty[SagaRuntime], rounds: int) -> tuple[str, OrderRequest]:
    """A shipment that fails, whose refund never succeeds: waiting for an operator."""
    await seed(runtime.domain)
    saga_id = f"ops-{uuid.uuid4().hex[:8]}"
    saga_order = order(saga_id, points=100, address=ANTARCTICA)
    await runtime.start_saga(saga_id, saga_order, refund_down(rounds), FAST)
    outcome = await runtime.wait(saga_id, 30)
    assert (outcome.status, outcome.failed_compensations) == (
        SagaStatus.NEEDS_INTERVENTION,
        [REFUND],
    )
    return saga_id, saga_order


async def invariants(
    runtime: Faulty[SagaRuntime], saga_order: OrderRequest, outcome: SagaOutcome
) -> None:
    state = await runtime.domain.snapshot()
    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, state, [(saga_order, outcome)])
    assert checks == dict.fromkeys(checks, True)


def summary(outcome: SagaOutcome) -> list[tuple[Action, str, ActionResult, str]]:
    return [(a.action, a.who, a.result, a.note) for a in outcome.actions]


async def test_a_retry_that_succeeds_compensates_the_saga_and_is_recorded(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await stuck_refund(runtime, rounds=1)
    await invariants(runtime, saga_order, await runtime.describe(saga_id))

    action = await runtime.retry_compensation(saga_id, "ops-anna")

    assert (action.action, action.who, action.result, action.round) == (
        Action.RETRY_COMPENSATION,
        "ops-anna",
        ActionResult.COMPENSATED,
        1,
    )
    outcome = await runtime.wait(saga_id, 30)
    assert (outcome.status, outcome.reason, outcome.failed_compensations) == (
        SagaStatus.COMPENSATED,
        Reason.SHIPMENT_FAILED,
        [],
    )
    assert summary(outcome) == [
        (Action.RETRY_COMPENSATION, "ops-anna", ActionResult.COMPENSATED, "")
    ]
    charge = next(c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id)
    assert charge.refunded_cents == charge.amount_cents
    record = next(r for r in await runtime.domain.orders.records() if r.saga_id == saga_id)
    assert record.status is SagaStatus.COMPENSATED
    await invariants(runtime, saga_order, outcome)


async def test_a_retry_sent_twice_at_once_acts_once_and_the_other_is_refused(
    runtime: Faulty[SagaRuntime],
) -> None:
    """Two operators (or one double click) retry the same saga together: one round runs."""
    saga_id, saga_order = await stuck_refund(runtime, rounds=1)

    answers = await asyncio.gather(
        runtime.retry_compensation(saga_id, "ops-anna"),
        runtime.retry_compensation(saga_id, "ops-ben"),
        return_exceptions=True,
    )

    done = [a for a in answers if not isinstance(a, BaseException)]
    refused = [a for a in answers if isinstance(a, NotAwaitingOperator)]
    assert [a.result for a in done] == [ActionResult.COMPENSATED]
    assert len(refused) == 1
    outcome = await runtime.wait(saga_id, 30)
    assert outcome.status is SagaStatus.COMPENSATED
    assert [(a.action, a.result) for a in outcome.actions] == [
        (Action.RETRY_COMPENSATION, ActionResult.COMPENSATED)
    ]
    charge = next(c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id)
    assert charge.refunded_cents == charge.amount_cents
    await invariants(runtime, saga_order, outcome)


async def test_a_retry_that_fails_again_keeps_the_saga_waiting_until_it_is_resolved(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await stuck_refund(runtime, rounds=2)

    retried = await runtime.retry_compensation(saga_id, "ops-anna")
    assert retried.result is ActionResult.STILL_FAILING
    waiting = await runtime.wait(saga_id, 30)
    assert (waiting.status, waiting.failed_compensations) == (
        SagaStatus.NEEDS_INTERVENTION,
        [REFUND],
    )
    resolved = await runtime.resolve(saga_id, "ops-ben", "refunded by bank transfer")

    assert resolved.result is ActionResult.RESOLVED
    outcome = await runtime.describe(saga_id)
    assert outcome.status is SagaStatus.NEEDS_INTERVENTION and outcome.resolved
    assert summary(outcome) == [
        (Action.RETRY_COMPENSATION, "ops-anna", ActionResult.STILL_FAILING, ""),
        (Action.RESOLVE, "ops-ben", ActionResult.RESOLVED, "refunded by bank transfer"),
    ]
    assert all(a.at > 0 for a in outcome.actions)
    await invariants(runtime, saga_order, outcome)
    with pytest.raises(NotAwaitingOperator):
        await runtime.resolve(saga_id, "ops-ben", "again")


async def test_each_retry_keeps_the_result_its_own_round_came_to(
    runtime: Faulty[SagaRuntime],
) -> None:
    """A retry that failed stays still_failing after a later round compensated the saga."""
    saga_id, saga_order = await stuck_refund(runtime, rounds=2)

    first = await runtime.retry_compensation(saga_id, "ops-anna")
    second = await runtime.retry_compensation(saga_id, "ops-ben")

    assert (first.result, second.result) == (ActionResult.STILL_FAILING, ActionResult.COMPENSATED)
    outcome = await runtime.wait(saga_id, 30)
    assert [(a.who, a.result, a.round) for a in outcome.actions] == [
        ("ops-anna", ActionResult.STILL_FAILING, 1),
        ("ops-ben", ActionResult.COMPENSATED, 2),
    ]
    await invariants(runtime, saga_order, outcome)


async def test_a_saga_stopped_past_its_pivot_has_nothing_to_retry_and_can_be_resolved(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"ops-pivot-{uuid.uuid4().hex[:8]}"
    saga_order = order(saga_id, points=100)
    refused = FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, permanent=True)])
    await runtime.start_saga(saga_id, saga_order, refused, FAST)
    assert (await runtime.wait(saga_id, 30)).status is SagaStatus.NEEDS_INTERVENTION

    nothing = await runtime.retry_compensation(saga_id, "ops-anna")
    resolved = await runtime.resolve(saga_id, "ops-anna", "completed the order by hand")

    assert (nothing.result, resolved.result) == (
        ActionResult.NOTHING_TO_RETRY,
        ActionResult.RESOLVED,
    )
    outcome = await runtime.describe(saga_id)
    assert (outcome.status, outcome.failed_step, outcome.resolved) == (
        SagaStatus.NEEDS_INTERVENTION,
        StepName.COMPLETE_ORDER,
        True,
    )
    await invariants(runtime, saga_order, outcome)


async def test_a_saga_that_does_not_wait_for_an_operator_refuses_both_actions(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"ops-none-{uuid.uuid4().hex[:8]}"
    await runtime.start_saga(saga_id, order(saga_id), FaultPlan(), FAST)
    assert (await runtime.wait(saga_id, 30)).status is SagaStatus.COMPLETED

    with pytest.raises(NotAwaitingOperator):
        await runtime.retry_compensation(saga_id, "ops-anna")
    with pytest.raises(NotAwaitingOperator):
        await runtime.resolve(saga_id, "ops-anna", "nothing to do")
    with pytest.raises(NotAwaitingOperator):
        await runtime.retry_step(saga_id, "ops-anna")
    assert (await runtime.describe(saga_id)).actions == []


def completion_refused(rounds: int) -> FaultPlan:
    """The order cannot be completed in the saga's own run and ``rounds - 1`` retries."""
    return FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, permanent=True, rounds=rounds)])


async def refused_completion(runtime: Faulty[SagaRuntime], rounds: int) -> tuple[str, OrderRequest]:
    """A saga past its pivot whose last step is refused: waiting for an operator."""
    await seed(runtime.domain)
    saga_id = f"ops-finish-{uuid.uuid4().hex[:8]}"
    saga_order = order(saga_id, points=100)
    await runtime.start_saga(saga_id, saga_order, completion_refused(rounds), FAST)
    outcome = await runtime.wait(saga_id, 30)
    assert (outcome.status, outcome.failed_step, outcome.failed_compensations) == (
        SagaStatus.NEEDS_INTERVENTION,
        StepName.COMPLETE_ORDER,
        [],
    )
    return saga_id, saga_order


async def test_retrying_the_step_past_the_pivot_completes_the_saga_and_is_recorded(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await refused_completion(runtime, rounds=1)
    await invariants(runtime, saga_order, await runtime.describe(saga_id))

    action = await runtime.retry_step(saga_id, "ops-anna")

    assert (action.action, action.who, action.result, action.round) == (
        Action.RETRY_STEP,
        "ops-anna",
        ActionResult.COMPLETED,
        1,
    )
    outcome = await runtime.wait(saga_id, 30)
    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPLETED,
        None,
        None,
    )
    steps = {s.step: s.status for s in outcome.steps}
    assert steps[StepName.COMPLETE_ORDER] is StepStatus.DONE
    assert summary(outcome) == [(Action.RETRY_STEP, "ops-anna", ActionResult.COMPLETED, "")]
    state = await runtime.domain.snapshot()
    charge = next(c for c in state.charges if c.saga_id == saga_id)
    assert (charge.amount_cents, charge.refunded_cents) == (saga_order.total_cents, 0)
    assert [s.status for s in state.shipments if s.saga_id == saga_id] == ["created"]
    record = next(r for r in state.orders if r.saga_id == saga_id)
    assert record.status is SagaStatus.COMPLETED
    await invariants(runtime, saga_order, outcome)
    with pytest.raises(NotAwaitingOperator):
        await runtime.retry_step(saga_id, "ops-anna")


async def test_a_retried_step_that_fails_again_keeps_the_saga_waiting_for_the_next_retry(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await refused_completion(runtime, rounds=2)

    again = await runtime.retry_step(saga_id, "ops-anna")

    assert (again.result, again.round) == (ActionResult.STILL_FAILING, 1)
    waiting = await runtime.wait(saga_id, 30)
    assert (waiting.status, waiting.failed_step) == (
        SagaStatus.NEEDS_INTERVENTION,
        StepName.COMPLETE_ORDER,
    )
    await invariants(runtime, saga_order, waiting)

    done = await runtime.retry_step(saga_id, "ops-ben")

    assert (done.result, done.round) == (ActionResult.COMPLETED, 2)
    outcome = await runtime.wait(saga_id, 30)
    assert outcome.status is SagaStatus.COMPLETED
    assert summary(outcome) == [
        (Action.RETRY_STEP, "ops-anna", ActionResult.STILL_FAILING, ""),
        (Action.RETRY_STEP, "ops-ben", ActionResult.COMPLETED, ""),
    ]
    await invariants(runtime, saga_order, outcome)


async def test_a_step_retry_sent_twice_at_once_runs_one_round(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await refused_completion(runtime, rounds=1)

    answers = await asyncio.gather(
        runtime.retry_step(saga_id, "ops-anna"),
        runtime.retry_step(saga_id, "ops-ben"),
        return_exceptions=True,
    )

    done = [a for a in answers if not isinstance(a, BaseException)]
    refused = [a for a in answers if isinstance(a, NotAwaitingOperator)]
    assert [(a.result, a.round) for a in done] == [(ActionResult.COMPLETED, 1)]
    assert len(refused) == 1
    outcome = await runtime.wait(saga_id, 30)
    assert [(a.action, a.result) for a in outcome.actions] == [
        (Action.RETRY_STEP, ActionResult.COMPLETED)
    ]
    await invariants(runtime, saga_order, outcome)


async def test_a_saga_whose_compensation_failed_has_no_step_to_retry(
    runtime: Faulty[SagaRuntime],
) -> None:
    saga_id, saga_order = await stuck_refund(runtime, rounds=1)

    nothing = await runtime.retry_step(saga_id, "ops-anna")

    assert nothing.result is ActionResult.NOTHING_TO_RETRY
    outcome = await runtime.describe(saga_id)
    assert (outcome.status, outcome.failed_compensations) == (
        SagaStatus.NEEDS_INTERVENTION,
        [REFUND],
    )
    await invariants(runtime, saga_order, outcome)
