"""SagaProgress: the workflow's live view, as the describe query and the outcome report it."""

from __future__ import annotations

from orchestration.progress import SagaProgress
from shared.contracts import (
    Action,
    ActionResult,
    LineItem,
    OperatorAction,
    OrderRequest,
    Phase,
    Reason,
    SagaStatus,
    ShippingAddress,
    StepId,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1

S = StepName


SPEC = ORDERS_V1.spec


def order(points: int = 100) -> OrderRequest:
    return OrderRequest(
        order_id="o-1",
        customer_id="alice",
        items=[LineItem(product_id="widget", quantity=1, unit_price_cents=100)],
        payment_method="card-4242",
        points_to_use=points,
        shipping_address=ShippingAddress(
            name="A", street="1 Main St", city="Springfield", postal_code="1", country="US"
        ),
    )


def states(progress: SagaProgress) -> list[tuple[StepId, Phase, StepStatus, int]]:
    return [(s.step, s.phase, s.status, s.attempts) for s in progress.outcome().steps]


def test_a_new_saga_lists_every_forward_step_pending_and_skips_unused_points() -> None:
    progress = SagaProgress("saga-1", order(points=0), SPEC)

    assert progress.outcome().status is SagaStatus.RUNNING
    assert [(step, status) for step, _, status, _ in states(progress)] == [
        (S.RESERVE_INVENTORY, StepStatus.PENDING),
        (S.CHARGE_PAYMENT, StepStatus.PENDING),
        (S.DEDUCT_POINTS, StepStatus.SKIPPED),
        (S.CREATE_SHIPMENT, StepStatus.PENDING),
        (S.COMPLETE_ORDER, StepStatus.PENDING),
    ]


def test_the_running_step_is_what_a_stuck_saga_is_stuck_in() -> None:
    progress = SagaProgress("saga-1", order(), SPEC)
    progress.start(S.RESERVE_INVENTORY)
    progress.finish(S.RESERVE_INVENTORY, StepStatus.DONE, 1)
    progress.start(S.CHARGE_PAYMENT)

    assert progress.running() is S.CHARGE_PAYMENT


def test_a_business_failure_names_the_step_and_reason_and_compensations_follow_in_order() -> None:
    progress = SagaProgress("saga-1", order(), SPEC)
    progress.finish(S.RESERVE_INVENTORY, StepStatus.DONE, 1)
    progress.finish(S.CHARGE_PAYMENT, StepStatus.FAILED, 2)
    progress.blame(S.CHARGE_PAYMENT, Reason.PAYMENT_DECLINED)
    for compensation, status in (
        (S.REFUND_PAYMENT, StepStatus.NOOP),
        (S.RELEASE_INVENTORY, StepStatus.DONE),
    ):
        progress.start_compensation(compensation)
        progress.finish_compensation(compensation, status, 1)
    progress.end(SagaStatus.COMPENSATED)

    outcome = progress.outcome()
    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.PAYMENT_DECLINED,
        S.CHARGE_PAYMENT,
    )
    assert states(progress)[-2:] == [
        (S.REFUND_PAYMENT, Phase.COMPENSATE, StepStatus.NOOP, 1),
        (S.RELEASE_INVENTORY, Phase.COMPENSATE, StepStatus.DONE, 1),
    ]
    assert states(progress)[1] == (S.CHARGE_PAYMENT, Phase.FORWARD, StepStatus.FAILED, 2)


def test_a_failed_compensation_is_listed_for_intervention() -> None:
    progress = SagaProgress("saga-1", order(), SPEC)
    progress.start_compensation(S.REFUND_PAYMENT)
    progress.finish_compensation(S.REFUND_PAYMENT, StepStatus.FAILED, 5)

    assert progress.outcome().failed_compensations == [S.REFUND_PAYMENT]


def test_an_interrupted_step_is_settled_by_what_its_compensation_found() -> None:
    undone, refused = SagaProgress("a", order(), SPEC), SagaProgress("b", order(), SPEC)
    for progress, found in ((undone, StepStatus.DONE), (refused, StepStatus.NOOP)):
        progress.start(S.CHARGE_PAYMENT)
        progress.interrupt(Reason.CANCELLED_BY_CUSTOMER)
        progress.start_compensation(S.REFUND_PAYMENT)
        progress.finish_compensation(S.REFUND_PAYMENT, found, 1)

    assert states(undone)[1] == (S.CHARGE_PAYMENT, Phase.FORWARD, StepStatus.DONE, 1)
    assert states(refused)[1] == (S.CHARGE_PAYMENT, Phase.FORWARD, StepStatus.REJECTED, 1)
    assert refused.outcome().reason is Reason.CANCELLED_BY_CUSTOMER
    assert refused.outcome().failed_step is None


def test_a_retried_compensation_updates_its_entry_and_actions_are_listed() -> None:
    progress = SagaProgress("saga-1", order(), SPEC)
    progress.start_compensation(S.REFUND_PAYMENT)
    progress.finish_compensation(S.REFUND_PAYMENT, StepStatus.FAILED, 5)
    progress.start_compensation(S.REFUND_PAYMENT)
    progress.finish_compensation(S.REFUND_PAYMENT, StepStatus.DONE, 1)
    progress.actions.append(
        OperatorAction(
            action=Action.RETRY_COMPENSATION, who="ops", at=1.0, result=ActionResult.COMPENSATED
        )
    )

    outcome = progress.outcome()
    assert outcome.failed_compensations == []
    assert states(progress)[-1] == (S.REFUND_PAYMENT, Phase.COMPENSATE, StepStatus.DONE, 1)
    assert [(a.action, a.who, a.result) for a in outcome.actions] == [
        (Action.RETRY_COMPENSATION, "ops", ActionResult.COMPENSATED)
    ]
    assert not outcome.resolved
