"""The invariant checker: which effects an outcome leaves, and the conservation checks."""

from __future__ import annotations

from typing import Any

from harness.compare.invariants import check_invariants, expected_net
from harness.compare.scenarios import order
from shared.contracts import (
    BusinessState,
    Charge,
    OrderRecord,
    Phase,
    Reason,
    SagaOutcome,
    SagaStatus,
    Shipment,
    StepId,
    StepName,
    StepState,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.seed import DEFAULT_SEED

ORDER = order("o-1", items={"widget": 2}, points=100)
TOTAL = 2 * 1_999

FORWARD = ORDERS_V1.spec.forward_steps


def outcome(
    status: SagaStatus,
    forward: dict[StepId, StepStatus],
    compensations: dict[StepId, StepStatus] | None = None,
    **fields: Any,
) -> SagaOutcome:
    steps = [StepState(step=s, phase=Phase.FORWARD, status=forward[s]) for s in FORWARD]
    steps += [
        StepState(step=s, phase=Phase.COMPENSATE, status=v)
        for s, v in (compensations or {}).items()
    ]
    failed = [s for s, v in (compensations or {}).items() if v is StepStatus.FAILED]
    return SagaOutcome(
        saga_id="s-1",
        order_id=ORDER.order_id,
        status=status,
        steps=steps,
        failed_compensations=failed,
        **fields,
    )


def state(
    *,
    stock: int,
    reserved: bool,
    refunded: int,
    points: int,
    shipment: str | None,
    status: SagaStatus,
) -> BusinessState:
    return BusinessState(
        stock={**{p: v.stock for p, v in DEFAULT_SEED.products.items()}, "widget": stock},
        reserved={"s-1": {"widget": 2}} if reserved else {},
        charges=[
            Charge(saga_id="s-1", customer_id="alice", amount_cents=TOTAL, refunded_cents=refunded)
        ],
        points={**DEFAULT_SEED.points, "alice": points},
        shipments=[Shipment(saga_id="s-1", order_id="o-1", status=shipment)] if shipment else [],
        orders=[OrderRecord(saga_id="s-1", order_id="o-1", total_cents=TOTAL, status=status)],
    )


DONE, FAILED = StepStatus.DONE, StepStatus.FAILED
PAST_THE_PIVOT: dict[StepId, StepStatus] = {
    **dict.fromkeys(FORWARD, DONE),
    StepName.COMPLETE_ORDER: FAILED,
}


def test_a_saga_needing_intervention_past_the_pivot_keeps_every_forward_effect() -> None:
    stuck = outcome(
        SagaStatus.NEEDS_INTERVENTION, PAST_THE_PIVOT, failed_step=StepName.COMPLETE_ORDER
    )
    kept = state(
        stock=98,
        reserved=True,
        refunded=0,
        points=4_900,
        shipment="created",
        status=SagaStatus.NEEDS_INTERVENTION,
    )

    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, kept, [(ORDER, stuck)])

    assert checks == dict.fromkeys(checks, True)
    assert expected_net(ORDERS_V1, DEFAULT_SEED, [(ORDER, stuck)]).shipped == ["o-1"]


def test_a_saga_needing_intervention_before_the_pivot_keeps_only_what_was_not_undone() -> None:
    forward = {
        **dict.fromkeys(FORWARD, DONE),
        StepName.CREATE_SHIPMENT: FAILED,
    }
    forward[StepName.COMPLETE_ORDER] = StepStatus.PENDING
    refund_failed = outcome(
        SagaStatus.NEEDS_INTERVENTION,
        forward,
        {
            StepName.CANCEL_SHIPMENT: StepStatus.NOOP,
            StepName.RESTORE_POINTS: DONE,
            StepName.REFUND_PAYMENT: FAILED,
            StepName.RELEASE_INVENTORY: DONE,
        },
        reason=Reason.SHIPMENT_FAILED,
        failed_step=StepName.CREATE_SHIPMENT,
    )
    only_charged = state(
        stock=100,
        reserved=False,
        refunded=0,
        points=5_000,
        shipment=None,
        status=SagaStatus.NEEDS_INTERVENTION,
    )

    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, only_charged, [(ORDER, refund_failed)])

    assert checks == dict.fromkeys(checks, True)


def test_a_shipment_left_by_a_saga_that_claims_to_be_undone_breaks_the_invariant() -> None:
    forward = {
        **dict.fromkeys(FORWARD, DONE),
        StepName.COMPLETE_ORDER: StepStatus.PENDING,
    }
    undone = outcome(
        SagaStatus.COMPENSATED,
        forward,
        {
            StepName.CANCEL_SHIPMENT: DONE,
            StepName.RESTORE_POINTS: DONE,
            StepName.REFUND_PAYMENT: DONE,
            StepName.RELEASE_INVENTORY: DONE,
        },
        reason=Reason.CANCELLED_BY_CUSTOMER,
    )
    shipped_anyway = state(
        stock=100,
        reserved=False,
        refunded=TOTAL,
        points=5_000,
        shipment="created",
        status=SagaStatus.COMPENSATED,
    )

    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, shipped_anyway, [(ORDER, undone)])

    assert checks["shipments_match_outcomes"] is False


def test_one_order_charged_under_two_saga_ids_breaks_the_no_double_charge_invariant() -> None:
    done = outcome(SagaStatus.COMPLETED, dict.fromkeys(FORWARD, DONE))
    twice = state(
        stock=96, reserved=True, refunded=0, points=4_800, shipment="created",
        status=SagaStatus.COMPLETED,
    )  # fmt: skip
    second = Charge(saga_id="s-2", customer_id="alice", amount_cents=TOTAL, refunded_cents=0)
    record = OrderRecord(
        saga_id="s-2", order_id="o-1", total_cents=TOTAL, status=SagaStatus.COMPLETED
    )
    doubled = twice.model_copy(
        update={"charges": [*twice.charges, second], "orders": [*twice.orders, record]}
    )

    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, doubled, [(ORDER, done), (ORDER, done)])

    assert checks["no_double_charge"] is False
