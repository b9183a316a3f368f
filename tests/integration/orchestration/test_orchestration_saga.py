"""OrderSagaWorkflow on a real dev server: outcomes, compensations, crashes and business state."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from harness.compare.faulty import Faulty
from orchestration.messages import SagaInput
from orchestration.runtime import OrchestrationRuntime
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import Phase, Reason, SagaStatus, StepName, StepStatus
from shared.definitions import ORDERS_V1, definition_named
from shared.faults import CrashPoint, FaultPlan, FaultRule, Hold, reached
from shared.runtime import SagaStuck
from tests.integration.orchestration.orchestration_support import (
    FAST,
    SEEDED_POINTS,
    WIDGET_PRICE,
    SagaEffects,
    attempts,
    compensation_order,
    effects,
    new_id,
    order,
    statuses,
    untouched,
    wait_running,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")

S = StepName
DONE, NOOP = StepStatus.DONE, StepStatus.NOOP


def plan(*rules: FaultRule) -> FaultPlan:
    return FaultPlan(rules=list(rules))


async def test_happy_path_completes_every_step_once_and_ships(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("happy")
    await runtime.start_saga(saga_id, order(saga_id), FaultPlan(), FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPLETED,
        None,
        None,
    )
    assert set(statuses(outcome, Phase.FORWARD).values()) == {DONE}
    assert set(attempts(outcome, Phase.FORWARD).values()) == {1}
    assert compensation_order(outcome) == []
    assert await effects(runtime.domain, saga_id) == SagaEffects(
        widgets_in_stock=98,
        charged_cents=2 * WIDGET_PRICE,
        refunded_cents=0,
        points={**SEEDED_POINTS, "alice": 4_900},
        shipment="created",
        order=(SagaStatus.COMPLETED, None),
    )


async def test_skipped_points_step_is_reported_skipped_and_never_compensated(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("nopoints")
    await runtime.start_saga(saga_id, order(saga_id, points=0, country="AQ"), FaultPlan(), FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert statuses(outcome, Phase.FORWARD)[S.DEDUCT_POINTS] is StepStatus.SKIPPED
    assert compensation_order(outcome) == [S.CANCEL_SHIPMENT, S.REFUND_PAYMENT, S.RELEASE_INVENTORY]


async def test_insufficient_points_compensates_in_reverse_order_with_a_recorded_noop(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("points")
    await runtime.start_saga(saga_id, order(saga_id, customer="bob", points=500), FaultPlan(), FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.INSUFFICIENT_POINTS,
        S.DEDUCT_POINTS,
    )
    assert compensation_order(outcome) == [S.RESTORE_POINTS, S.REFUND_PAYMENT, S.RELEASE_INVENTORY]
    assert statuses(outcome, Phase.COMPENSATE) == {
        S.RESTORE_POINTS: NOOP,
        S.REFUND_PAYMENT: DONE,
        S.RELEASE_INVENTORY: DONE,
    }
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=True, shipped=False, reason=Reason.INSUFFICIENT_POINTS
    )


@pytest.mark.parametrize(
    "step", [S.RESERVE_INVENTORY, S.CHARGE_PAYMENT, S.DEDUCT_POINTS, S.CREATE_SHIPMENT]
)
async def test_cancel_during_each_forward_step_refuses_it_and_compensates_the_steps_before(
    runtime: Faulty[OrchestrationRuntime], step: StepName
) -> None:
    saga_id = new_id(f"cancel-{step.value}")
    delayed = plan(FaultRule(step=step, delay_ms=500))
    await runtime.start_saga(saga_id, order(saga_id), delayed, FAST)
    await wait_running(runtime, saga_id, step)

    await runtime.cancel_saga(saga_id)
    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason) == (
        SagaStatus.COMPENSATED,
        Reason.CANCELLED_BY_CUSTOMER,
    )
    # The step in flight had not committed (its delay comes first): the fence refused it,
    # nothing of it is undone, and the steps before it are.
    assert statuses(outcome, Phase.FORWARD)[step] is StepStatus.REJECTED
    compensations = statuses(outcome, Phase.COMPENSATE)
    assert set(compensations.values()) <= {DONE}
    assert ORDERS_V1.spec.compensation_of(step) not in compensations
    charged = step in (S.DEDUCT_POINTS, S.CREATE_SHIPMENT)
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=charged, shipped=False, reason=Reason.CANCELLED_BY_CUSTOMER
    )


async def test_cancel_after_the_pivot_is_ignored_and_the_order_completes(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("late-cancel")
    delayed = plan(FaultRule(step=S.COMPLETE_ORDER, delay_ms=300))
    await runtime.start_saga(saga_id, order(saga_id), delayed, FAST)
    await wait_running(runtime, saga_id, S.COMPLETE_ORDER)

    await runtime.cancel_saga(saga_id)
    await runtime.runtime.client.get_workflow_handle(saga_id).cancel()
    outcome = await runtime.wait(saga_id, 10)

    assert outcome.status is SagaStatus.COMPLETED
    assert (await effects(runtime.domain, saga_id)).shipment == "created"


async def test_workflow_cancellation_before_the_pivot_acts_as_the_customers_cancel(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("wf-cancel")
    # The charge is held before its service runs until the cancel has fenced it: in flight
    # when the workflow is cancelled, however slow the machine (a 400 ms delay lost the race
    # at load 11 and the charge committed first).
    fenced = reached(saga_id, S.CHARGE_PAYMENT, "fenced")
    held = FaultPlan(holds=[Hold(step=S.CHARGE_PAYMENT, until=fenced)])
    await runtime.start_saga(saga_id, order(saga_id), held, FAST)
    await wait_running(runtime, saga_id, S.CHARGE_PAYMENT)

    await runtime.runtime.client.get_workflow_handle(saga_id).cancel()
    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason) == (
        SagaStatus.COMPENSATED,
        Reason.CANCELLED_BY_CUSTOMER,
    )
    # The charge in flight (held before its commit) was fenced and refused.
    assert statuses(outcome, Phase.FORWARD)[S.CHARGE_PAYMENT] is StepStatus.REJECTED
    assert compensation_order(outcome) == [S.RELEASE_INVENTORY]
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=False, shipped=False, reason=Reason.CANCELLED_BY_CUSTOMER
    )


async def test_cancel_during_compensation_neither_stops_it_nor_changes_the_reason(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("cancel-comp")
    slow_refund = plan(FaultRule(step=S.REFUND_PAYMENT, delay_ms=400))
    await runtime.start_saga(saga_id, order(saga_id, country="AQ"), slow_refund, FAST)
    await wait_running(runtime, saga_id, S.REFUND_PAYMENT)

    await runtime.cancel_saga(saga_id)
    await runtime.runtime.client.get_workflow_handle(saga_id).cancel()
    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.SHIPMENT_FAILED,
        S.CREATE_SHIPMENT,
    )
    assert compensation_order(outcome) == [
        S.CANCEL_SHIPMENT,
        S.RESTORE_POINTS,
        S.REFUND_PAYMENT,
        S.RELEASE_INVENTORY,
    ]
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=True, shipped=False, reason=Reason.SHIPMENT_FAILED
    )


async def test_refund_failing_twice_then_succeeding_still_compensates(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("refund-retry")
    flaky = plan(FaultRule(step=S.REFUND_PAYMENT, transient=2))
    await runtime.start_saga(saga_id, order(saga_id, country="AQ"), flaky, FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED)
    assert attempts(outcome, Phase.COMPENSATE)[S.REFUND_PAYMENT] == 3
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=True, shipped=False, reason=Reason.SHIPMENT_FAILED
    )


@pytest.mark.parametrize(
    ("rule", "spent"),
    [
        (FaultRule(step=S.REFUND_PAYMENT, transient=1_000), FAST.compensation_attempts),
        (FaultRule(step=S.REFUND_PAYMENT, permanent=True), 1),
    ],
    ids=["retries-exhausted", "refused"],
)
async def test_refund_that_never_succeeds_ends_in_needs_intervention_after_the_others_ran(
    runtime: Faulty[OrchestrationRuntime], rule: FaultRule, spent: int
) -> None:
    saga_id = new_id("refund-stuck")
    await runtime.start_saga(saga_id, order(saga_id, country="AQ"), plan(rule), FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason, outcome.failed_compensations) == (
        SagaStatus.NEEDS_INTERVENTION,
        Reason.SHIPMENT_FAILED,
        [S.REFUND_PAYMENT],
    )
    assert statuses(outcome, Phase.COMPENSATE) == {
        S.CANCEL_SHIPMENT: NOOP,
        S.RESTORE_POINTS: DONE,
        S.REFUND_PAYMENT: StepStatus.FAILED,
        S.RELEASE_INVENTORY: DONE,
    }
    assert attempts(outcome, Phase.COMPENSATE)[S.REFUND_PAYMENT] == spent
    assert await effects(runtime.domain, saga_id) == SagaEffects(
        widgets_in_stock=100,
        charged_cents=2 * WIDGET_PRICE,
        refunded_cents=0,
        points=SEEDED_POINTS,
        shipment=None,
        order=(SagaStatus.NEEDS_INTERVENTION, Reason.SHIPMENT_FAILED),
    )


@pytest.mark.parametrize("point", [CrashPoint.AFTER_COMMIT, CrashPoint.BEFORE_COMMIT])
async def test_a_worker_crash_in_a_step_is_retried_and_charges_once(
    runtime: Faulty[OrchestrationRuntime], point: CrashPoint
) -> None:
    saga_id = new_id(f"crash-{point.value}")
    crash = plan(FaultRule(step=S.CHARGE_PAYMENT, crash=point))
    await runtime.start_saga(saga_id, order(saga_id), crash, FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert outcome.status is SagaStatus.COMPLETED
    assert attempts(outcome, Phase.FORWARD)[S.CHARGE_PAYMENT] == 2
    charges = [c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id]
    assert [(c.amount_cents, c.refunded_cents) for c in charges] == [(2 * WIDGET_PRICE, 0)]


async def test_lost_acknowledgements_are_redelivered_without_double_effects(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("dup")
    duplicates = plan(
        *(FaultRule(step=s, duplicate=True) for s in (S.CHARGE_PAYMENT, S.DEDUCT_POINTS))
    )
    await runtime.start_saga(saga_id, order(saga_id), duplicates, FAST)

    outcome = await runtime.wait(saga_id, 10)

    assert outcome.status is SagaStatus.COMPLETED
    assert attempts(outcome, Phase.FORWARD)[S.CHARGE_PAYMENT] == 2
    assert await effects(runtime.domain, saga_id) == SagaEffects(
        widgets_in_stock=98,
        charged_cents=2 * WIDGET_PRICE,
        refunded_cents=0,
        points={**SEEDED_POINTS, "alice": 4_900},
        shipment="created",
        order=(SagaStatus.COMPLETED, None),
    )


async def test_a_step_hanging_past_the_deadline_times_out_and_compensates(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("hang")
    hang = plan(FaultRule(step=S.CHARGE_PAYMENT, hang=True))
    policy = FAST.model_copy(update={"deadline_s": 2.0})
    await runtime.start_saga(saga_id, order(saga_id), hang, policy)

    outcome = await runtime.wait(saga_id, 10)

    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.TIMED_OUT,
        None,
    )
    # The hung step never acted: its compensation was a no-op that tombstoned it.
    assert statuses(outcome, Phase.FORWARD)[S.CHARGE_PAYMENT] is StepStatus.REJECTED
    assert await effects(runtime.domain, saga_id) == untouched(
        charged=False, shipped=False, reason=Reason.TIMED_OUT
    )


async def test_wait_names_the_step_a_saga_is_stuck_in_and_describe_counts_its_attempts(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("stuck")
    hang = plan(FaultRule(step=S.DEDUCT_POINTS, hang=True))
    policy = FAST.model_copy(update={"attempt_timeout_s": 0.5})
    await runtime.start_saga(saga_id, order(saga_id), hang, policy)

    with pytest.raises(SagaStuck) as stuck:
        await runtime.wait(saga_id, 1.5)

    assert stuck.value.step is S.DEDUCT_POINTS
    live = await runtime.describe(saga_id)
    assert live.status is SagaStatus.RUNNING
    assert attempts(live, Phase.FORWARD)[S.DEDUCT_POINTS] >= 2
    await runtime.cancel_saga(saga_id)
    assert (await runtime.wait(saga_id, 10)).reason is Reason.CANCELLED_BY_CUSTOMER


async def test_a_workflow_of_another_saga_definition_fails_its_task_here_naming_both(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    voucher = definition_named("voucher")
    saga_id = new_id("other-definition")
    saga = SagaInput(
        saga_id=saga_id,
        order=order(saga_id),
        policy=FAST,
        saga=voucher.spec,
        definition=voucher.ref,
    )
    client = runtime.runtime.client
    handle = await client.start_workflow(
        OrderSagaWorkflow.run, saga, id=saga_id, task_queue=runtime.runtime.task_queue
    )
    try:
        message = await first_task_failure(handle)
    finally:
        await handle.terminate("a worker of that definition would take it")

    assert f"made by saga definition {voucher.ref}" in message
    assert f"this process holds {ORDERS_V1.ref}" in message
    assert "\n" not in message
    assert saga_id not in {r.saga_id for r in await runtime.domain.orders.records()}


async def first_task_failure(handle: WorkflowHandle[Any, Any], timeout_s: float = 20.0) -> str:
    """The message of the workflow's first failed workflow task, once the history has one."""
    async with asyncio.timeout(timeout_s):
        while True:
            async for event in handle.fetch_history_events():
                if event.HasField("workflow_task_failed_event_attributes"):
                    return str(event.workflow_task_failed_event_attributes.failure.message)
            await asyncio.sleep(0.1)
