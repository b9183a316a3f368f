"""The scenario catalogue: orders, fault plans and expected outcomes, the same for both variants."""

from __future__ import annotations

from dataclasses import dataclass, field

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
from shared.definitions import ORDERS_V1
from shared.faults import CrashPoint, FaultPlan, FaultRule
from shared.seed import DEFAULT_SEED, SeedData

HOME = ShippingAddress(
    name="Alice Example", street="1 Main St", city="Springfield", postal_code="12345", country="US"
)
ANTARCTICA = ShippingAddress(
    name="Research Station", street="1 Ice Shelf", city="McMurdo", postal_code="0000", country="AQ"
)
SPEC = ORDERS_V1.spec
"""The catalogue is the order saga's: version 1 of its definition."""
PRICES = {name: product.price_cents for name, product in DEFAULT_SEED.products.items()}

FAST = SagaPolicy(
    deadline_s=20.0,
    attempt_timeout_s=2.0,
    initial_backoff_s=0.05,
    backoff_factor=2.0,
    max_backoff_s=0.4,
    compensation_attempts=4,
)
"""Timings for the catalogue: short backoffs so a run takes seconds, the same for both."""


@dataclass(frozen=True)
class Expected:
    status: SagaStatus
    reason: ReasonId | None = None
    failed_step: StepName | None = None
    failed_compensations: tuple[StepName, ...] = ()


@dataclass(frozen=True)
class SagaCase:
    """One saga; ``cancel_during`` sends the customer's cancel while that step is in flight,
    ``cancel_after_commit`` once that step committed in its service (before it is reported)."""

    order: OrderRequest
    faults: FaultPlan = field(default_factory=FaultPlan)
    expected: Expected | None = None
    cancel_during: StepName | None = None
    cancel_after_commit: StepName | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    teaches: str
    sagas: tuple[SagaCase, ...]
    policy: SagaPolicy = FAST
    seed: SeedData = DEFAULT_SEED
    expected_counts: dict[SagaStatus, int] = field(default_factory=dict)
    """For races, where which saga wins is timing: how many end in each status."""

    @property
    def per_saga(self) -> bool:
        """Whether each saga's own outcome is fixed (not a race between sagas)."""
        return not self.expected_counts


def order(
    order_id: str,
    *,
    customer: str = "alice",
    items: dict[str, int] | None = None,
    points: int = 0,
    card: str = "card-4242",
    address: ShippingAddress = HOME,
) -> OrderRequest:
    lines = items or {"widget": 2}
    return OrderRequest(
        order_id=order_id,
        customer_id=customer,
        items=[
            LineItem(product_id=p, quantity=q, unit_price_cents=PRICES.get(p, 100))
            for p, q in lines.items()
        ],
        payment_method=card,
        points_to_use=points,
        shipping_address=address,
    )


def _plan(*rules: FaultRule, seed: int = 0) -> FaultPlan:
    return FaultPlan(seed=seed, rules=list(rules))


def _one(case: SagaCase) -> tuple[SagaCase, ...]:
    return (case,)


COMPLETED = Expected(SagaStatus.COMPLETED)


def _compensated(reason: Reason, step: StepName | None = None) -> Expected:
    return Expected(SagaStatus.COMPENSATED, reason, step)


CATALOGUE: tuple[Scenario, ...] = (
    Scenario(
        "happy_path",
        "Happy path",
        "Every step succeeds once: the baseline cost of each style.",
        _one(
            SagaCase(
                order("happy-1", points=100, items={"widget": 2, "gadget": 1}), expected=COMPLETED
            )
        ),
    ),
    Scenario(
        "no_points",
        "No points used",
        "A step that does not apply is skipped, not run as a no-op.",
        _one(
            SagaCase(order("nopoints-1", customer="bob", items={"gadget": 1}), expected=COMPLETED)
        ),
    ),
    Scenario(
        "out_of_stock",
        "Out of stock",
        "The first step fails: nothing to compensate, yet the saga must still end cleanly.",
        _one(
            SagaCase(
                order("oos-1", items={"widget": 1, "sold-out": 1}),
                expected=_compensated(Reason.OUT_OF_STOCK, StepName.RESERVE_INVENTORY),
            )
        ),
    ),
    Scenario(
        "payment_declined",
        "Payment declined",
        "A business failure in step 2 releases the reservation.",
        _one(
            SagaCase(
                order("declined-1", card="card-0002", points=50),
                expected=_compensated(Reason.PAYMENT_DECLINED, StepName.CHARGE_PAYMENT),
            )
        ),
    ),
    Scenario(
        "insufficient_points",
        "Insufficient points",
        "A failure in step 3 refunds the charge and releases the stock.",
        _one(
            SagaCase(
                order("points-1", customer="bob", points=500),
                expected=_compensated(Reason.INSUFFICIENT_POINTS, StepName.DEDUCT_POINTS),
            )
        ),
    ),
    Scenario(
        "shipment_failed",
        "Shipment failed",
        "The pivot fails: three compensations in reverse order.",
        _one(
            SagaCase(
                order("ship-1", points=200, address=ANTARCTICA),
                expected=_compensated(Reason.SHIPMENT_FAILED, StepName.CREATE_SHIPMENT),
            )
        ),
    ),
    Scenario(
        "transient_payment_error",
        "Transient payment errors",
        "Technical failures are retried with backoff and never compensated.",
        _one(
            SagaCase(
                order("transient-1", points=100),
                _plan(FaultRule(step=StepName.CHARGE_PAYMENT, transient=2)),
                COMPLETED,
            )
        ),
    ),
    Scenario(
        "refund_retried",
        "Refund fails twice, then succeeds",
        "A compensation is retried within its budget.",
        _one(
            SagaCase(
                order("refund-1", points=100, address=ANTARCTICA),
                _plan(FaultRule(step=StepName.REFUND_PAYMENT, transient=2)),
                _compensated(Reason.SHIPMENT_FAILED, StepName.CREATE_SHIPMENT),
            )
        ),
    ),
    Scenario(
        "compensation_never_succeeds",
        "A compensation that never succeeds",
        "A spent retry budget ends NEEDS_INTERVENTION; the other compensations still run.",
        _one(
            SagaCase(
                order("stuck-refund-1", points=100, address=ANTARCTICA),
                _plan(FaultRule(step=StepName.REFUND_PAYMENT, transient=1_000)),
                Expected(
                    SagaStatus.NEEDS_INTERVENTION,
                    Reason.SHIPMENT_FAILED,
                    StepName.CREATE_SHIPMENT,
                    (StepName.REFUND_PAYMENT,),
                ),
            )
        ),
    ),
    Scenario(
        "completion_refused",
        "The order cannot be completed after the pivot",
        "Past the pivot nothing is undone: the saga waits for an operator with every effect kept.",
        _one(
            SagaCase(
                order("unfinished-1", points=100),
                _plan(FaultRule(step=StepName.COMPLETE_ORDER, permanent=True)),
                Expected(SagaStatus.NEEDS_INTERVENTION, None, StepName.COMPLETE_ORDER),
            )
        ),
    ),
    Scenario(
        "customer_cancel",
        "Customer cancels mid-flight",
        "A cancel before the shipment commits fences it: refused, and everything before undone.",
        _one(
            SagaCase(
                order("cancel-1", points=100),
                _plan(FaultRule(step=StepName.CREATE_SHIPMENT, delay_ms=1_500)),
                _compensated(Reason.CANCELLED_BY_CUSTOMER),
                cancel_during=StepName.CREATE_SHIPMENT,
            )
        ),
    ),
    Scenario(
        "cancel_before_pivot",
        "Customer cancels just before the pivot",
        "The points step committed but is not reported yet: the shipment never starts.",
        _one(
            SagaCase(
                order("cancel-early-1", points=100),
                _plan(
                    FaultRule(
                        step=StepName.DEDUCT_POINTS, delay_after_ms=5_000, until_cancelled=True
                    )
                ),
                _compensated(Reason.CANCELLED_BY_CUSTOMER),
                cancel_after_commit=StepName.DEDUCT_POINTS,
            )
        ),
    ),
    Scenario(
        "cancel_after_pivot_commit",
        "Customer cancels just after the pivot committed",
        "The shipment exists but is not reported yet: the pivot's commit wins, the order ships.",
        _one(
            SagaCase(
                order("cancel-late-1", points=100),
                _plan(FaultRule(step=StepName.CREATE_SHIPMENT, delay_after_ms=1_500)),
                COMPLETED,
                cancel_after_commit=StepName.CREATE_SHIPMENT,
            )
        ),
    ),
    Scenario(
        "hang_past_deadline",
        "A step hangs past the deadline",
        "Only a deadline notices a step that never answers; then everything is compensated.",
        _one(
            SagaCase(
                order("hang-1", points=100),
                _plan(FaultRule(step=StepName.CREATE_SHIPMENT, hang=True)),
                _compensated(Reason.TIMED_OUT),
            )
        ),
        policy=FAST.model_copy(update={"deadline_s": 4.0, "attempt_timeout_s": 1.0}),
    ),
    Scenario(
        "duplicate_delivery",
        "Every message delivered twice",
        "Each step's acknowledgement is lost once: idempotency keeps every effect single.",
        _one(
            SagaCase(
                order("dup-1", points=100),
                _plan(*(FaultRule(step=s, duplicate=True) for s in SPEC.forward_steps)),
                COMPLETED,
            )
        ),
    ),
    Scenario(
        "duplicate_compensations",
        "Every compensation delivered twice",
        "Compensations are idempotent too: one refund, one release.",
        _one(
            SagaCase(
                order("dupcomp-1", points=100, address=ANTARCTICA),
                _plan(*(FaultRule(step=s, duplicate=True) for s in SPEC.compensations)),
                _compensated(Reason.SHIPMENT_FAILED, StepName.CREATE_SHIPMENT),
            )
        ),
    ),
    Scenario(
        "crash_after_commit",
        "Crash after commit, before acknowledging",
        "The payment process dies after charging: the retry finds the charge, no double charge.",
        _one(
            SagaCase(
                order("crash-1", points=100),
                _plan(FaultRule(step=StepName.CHARGE_PAYMENT, crash=CrashPoint.AFTER_COMMIT)),
                COMPLETED,
            )
        ),
        policy=FAST.model_copy(update={"attempt_timeout_s": 1.0}),
    ),
    Scenario(
        "seeded_fault_mix",
        "A seeded mix of recoverable faults",
        "Delays, transient errors and duplicates drawn from seed 7 replay identically on both.",
        _one(
            SagaCase(
                order("mix-1", points=100), FaultPlan.random(seed=7, spec=SPEC, rate=0.5), COMPLETED
            )
        ),
    ),
    Scenario(
        "race_for_last_items",
        "20 orders race for 5 units",
        "Concurrent reservations never oversell: exactly 5 complete, 15 are out of stock.",
        tuple(
            SagaCase(order(f"race-{i:02d}", customer="carol", items={"last-few": 1}))
            for i in range(1, 21)
        ),
        expected_counts={SagaStatus.COMPLETED: 5, SagaStatus.COMPENSATED: 15},
    ),
)

BY_NAME = {scenario.name: scenario for scenario in CATALOGUE}


def get(name: str) -> Scenario:
    """The named scenario, or a KeyError whose message lists the known names."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown scenario {name!r}; choose one of: {', '.join(BY_NAME)}") from None
