"""Where the experiment parks version-1 sagas: before every step, and inside a compensation.

Each saga holds at its position (a `Hold` of the fault injector, released by name) so the
upgrade finds it there; released, it must end as it would have without any upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import (
    LineItem,
    OrderRequest,
    Reason,
    ReasonId,
    SagaPolicy,
    SagaStatus,
    ShippingAddress,
    StepName,
)
from shared.faults import FaultPlan, Hold, released
from shared.seed import Product, SeedData

HOLD_S = 5.0
"""A hold that waited this long fails its attempt and the engine tries again (and it waits
again): short enough that a process replaced meanwhile gets the saga back soon."""
POLICY = SagaPolicy(
    deadline_s=3600.0,
    attempt_timeout_s=HOLD_S + 5.0,
    initial_backoff_s=0.05,
    backoff_factor=2.0,
    max_backoff_s=0.5,
    compensation_attempts=1000,
)
"""Parked sagas must outlive the experiment: no deadline in sight, an attempt outlives its
hold, a compensation held many times over is not given up."""
LIMITS = {
    "limit_deadline_s": POLICY.deadline_s,
    "limit_compensation_attempts": POLICY.compensation_attempts,
}
"""The experiment's processes and front doors admit that policy: a deployment's default limits
(shared/admission.py) refuse a deadline past 600 s and more than 20 compensation attempts."""
SEED = SeedData(
    products={
        "widget": Product(name="Widget", price_cents=1999, stock=100_000),
        "gizmo": Product(name="Gizmo", price_cents=12_500, stock=1_000),
    },
    points={"alice": 10_000_000},
)
US = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="US")
AQ = US.model_copy(update={"country": "AQ"})


@dataclass(frozen=True)
class Position:
    """One place to park a saga, and the end it must reach once released."""

    name: str
    step: StepName
    status: SagaStatus = SagaStatus.COMPLETED
    reason: ReasonId | None = None
    ships_to: ShippingAddress = US
    card: str = "card-4242"

    def order(self, order_id: str) -> OrderRequest:
        return OrderRequest(
            order_id=order_id,
            customer_id="alice",
            items=[LineItem(product_id="widget", quantity=2, unit_price_cents=1999)],
            payment_method=self.card,
            points_to_use=100,
            shipping_address=self.ships_to,
        )

    def plan(self, release: str) -> FaultPlan:
        return FaultPlan(holds=[Hold(step=self.step, until=released(release), timeout_s=HOLD_S)])


POSITIONS = (
    Position("before reserve_inventory", StepName.RESERVE_INVENTORY),
    Position("before charge_payment", StepName.CHARGE_PAYMENT),
    Position(
        "before charge_payment, declined",
        StepName.CHARGE_PAYMENT,
        SagaStatus.COMPENSATED,
        Reason.PAYMENT_DECLINED,
        card="card-0002",
    ),
    Position("before deduct_points", StepName.DEDUCT_POINTS),
    Position("before create_shipment", StepName.CREATE_SHIPMENT),
    Position("before complete_order", StepName.COMPLETE_ORDER),
    Position(
        "compensating: before refund_payment",
        StepName.REFUND_PAYMENT,
        SagaStatus.COMPENSATED,
        Reason.SHIPMENT_FAILED,
        AQ,
    ),
)
"""Every forward step of version 1, a payment that will be declined (the chain of hand-backs
runs after the upgrade), and the refund of a saga whose shipment failed."""

CROSSING = "before deduct_points"
"""The position whose sagas cross versions mid-way (charged by v1, finished by v2): the one
whose swimlanes the report links."""


@dataclass(frozen=True)
class Fresh:
    """A saga started on version 2 once the upgrade is done, and the end it must reach."""

    name: str
    status: SagaStatus
    reason: ReasonId | None = None
    gizmos: int = 0
    ships_to: ShippingAddress = US

    def order(self, order_id: str) -> OrderRequest:
        items = [LineItem(product_id="widget", quantity=2, unit_price_cents=1999)]
        if self.gizmos:
            items = [LineItem(product_id="gizmo", quantity=self.gizmos, unit_price_cents=12_500)]
        return OrderRequest(
            order_id=order_id,
            customer_id="alice",
            items=items,
            payment_method="card-4242",
            points_to_use=100,
            shipping_address=self.ships_to,
        )


FRESH = (
    Fresh("v2 happy", SagaStatus.COMPLETED),
    Fresh("v2 over the fraud limit", SagaStatus.COMPENSATED, "fraud_suspected", gizmos=17),
    Fresh("v2 shipment failed", SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED, ships_to=AQ),
)
"""Version 2's own sagas after the upgrade: its new step, its new refusal, a compensation."""
