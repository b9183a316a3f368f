"""The tracker's end decision: never before every compensation a saga needs is confirmed."""

from __future__ import annotations

from choreography.tracker import decide, in_flight
from shared.contracts import (
    Phase,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepName,
    StepState,
    StepStatus,
)
from shared.saga import FORWARD_STEPS, SAGA

DONE, RUNNING, NOOP, FAILED = (
    StepStatus.DONE,
    StepStatus.RUNNING,
    StepStatus.NOOP,
    StepStatus.FAILED,
)


def outcome(
    forward: dict[StepName, StepStatus],
    compensations: dict[StepName, StepStatus],
    reason: Reason | None = Reason.SHIPMENT_FAILED,
    failed_step: StepName | None = StepName.CREATE_SHIPMENT,
) -> SagaOutcome:
    steps = [
        StepState(step=s, phase=Phase.FORWARD, status=forward.get(s, StepStatus.PENDING))
        for s in FORWARD_STEPS
    ]
    steps += [StepState(step=s, phase=Phase.COMPENSATE, status=v) for s, v in compensations.items()]
    return SagaOutcome(
        saga_id="s",
        order_id="o",
        status=SagaStatus.RUNNING,
        reason=reason,
        failed_step=failed_step,
        failed_compensations=[s for s, v in compensations.items() if v is FAILED],
        steps=steps,
    )


SHIPMENT_FAILED = {
    StepName.RESERVE_INVENTORY: DONE,
    StepName.CHARGE_PAYMENT: DONE,
    StepName.DEDUCT_POINTS: DONE,
    StepName.CREATE_SHIPMENT: FAILED,
}


def test_no_end_while_the_chain_has_not_reached_inventory() -> None:
    running = {StepName.CANCEL_SHIPMENT: NOOP, StepName.RESTORE_POINTS: RUNNING}

    assert decide(outcome(SHIPMENT_FAILED, running), SAGA) is None
    assert in_flight(outcome(SHIPMENT_FAILED, running)) is StepName.RESTORE_POINTS


def test_no_end_while_a_step_that_acted_lacks_its_compensation() -> None:
    missing_refund = {StepName.RESTORE_POINTS: DONE, StepName.RELEASE_INVENTORY: DONE}

    assert decide(outcome(SHIPMENT_FAILED, missing_refund), SAGA) is None


def test_compensated_once_every_compensation_is_confirmed() -> None:
    all_done = {
        StepName.CANCEL_SHIPMENT: NOOP,
        StepName.RESTORE_POINTS: DONE,
        StepName.REFUND_PAYMENT: DONE,
        StepName.RELEASE_INVENTORY: DONE,
    }

    assert decide(outcome(SHIPMENT_FAILED, all_done), SAGA) == (
        SagaStatus.COMPENSATED,
        Reason.SHIPMENT_FAILED,
    )


def test_failed_compensation_ends_in_needs_intervention_with_the_original_reason() -> None:
    refund_failed = {
        StepName.CANCEL_SHIPMENT: NOOP,
        StepName.RESTORE_POINTS: DONE,
        StepName.REFUND_PAYMENT: FAILED,
        StepName.RELEASE_INVENTORY: DONE,
    }

    assert decide(outcome(SHIPMENT_FAILED, refund_failed), SAGA) == (
        SagaStatus.NEEDS_INTERVENTION,
        Reason.SHIPMENT_FAILED,
    )


def test_order_that_cannot_be_completed_after_the_pivot_needs_a_person() -> None:
    stuck = {**SHIPMENT_FAILED, StepName.CREATE_SHIPMENT: DONE, StepName.COMPLETE_ORDER: FAILED}

    assert decide(outcome(stuck, {}, reason=None, failed_step=None), SAGA) == (
        SagaStatus.NEEDS_INTERVENTION,
        None,
    )


def test_completed_forward_run_has_nothing_to_decide() -> None:
    happy = {step: DONE for step in FORWARD_STEPS}

    assert decide(outcome(happy, {}, reason=None, failed_step=None), SAGA) is None
