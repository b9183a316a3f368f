"""Pydantic contracts shared by both variants: the order, step names, outcomes, business state."""

from __future__ import annotations

import unicodedata
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
"""Ids end up in NATS subjects and Temporal workflow ids, so only subject-safe characters."""


def _printable(value: str) -> str:
    """Refuse control characters: they corrupt logs, reports and a carrier's label."""
    for index, char in enumerate(value):
        if unicodedata.category(char) == "Cc":
            raise ValueError(f"holds a control character (U+{ord(char):04X} at {index})")
    return value


Text = Annotated[str, AfterValidator(_printable)]
"""Free text (names, addresses, payment methods): anything printable."""


class StepName(StrEnum):
    """Canonical names of every forward step and compensation, used in code, spans and reports."""

    RESERVE_INVENTORY = "reserve_inventory"
    CHARGE_PAYMENT = "charge_payment"
    DEDUCT_POINTS = "deduct_points"
    CREATE_SHIPMENT = "create_shipment"
    COMPLETE_ORDER = "complete_order"
    RELEASE_INVENTORY = "release_inventory"
    REFUND_PAYMENT = "refund_payment"
    RESTORE_POINTS = "restore_points"
    CANCEL_SHIPMENT = "cancel_shipment"


class Phase(StrEnum):
    FORWARD = "forward"
    COMPENSATE = "compensate"


class ServiceName(StrEnum):
    INVENTORY = "inventory"
    PAYMENT = "payment"
    POINTS = "points"
    SHIPPING = "shipping"
    ORDERS = "orders"


_Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]

StepId = Annotated[StepName | _Name, Field(union_mode="left_to_right")]
"""A step's or compensation's name: a canonical `StepName`, or any other a spec declares."""

ServiceId = Annotated[ServiceName | _Name, Field(union_mode="left_to_right")]
"""A service's name: a canonical `ServiceName`, or any other a spec declares."""


class SagaStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    NEEDS_INTERVENTION = "NEEDS_INTERVENTION"
    REJECTED = "REJECTED"
    """The services refused the order when it arrived (the catalogue, the customer records or
    the deployment's limits contradict it): nothing was reserved, charged or shipped."""

    @property
    def terminal(self) -> bool:
        """Settled: COMPLETED, COMPENSATED, REJECTED, or waiting for an operator
        (NEEDS_INTERVENTION), whose effects stay as they are until someone acts."""
        return self is not SagaStatus.RUNNING


class Reason(StrEnum):
    """Why a saga ended COMPENSATED, or REJECTED (the last four)."""

    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"
    INSUFFICIENT_POINTS = "insufficient_points"
    SHIPMENT_FAILED = "shipment_failed"
    CANCELLED_BY_CUSTOMER = "cancelled_by_customer"
    TIMED_OUT = "timed_out"
    UNKNOWN_CUSTOMER = "unknown_customer"
    UNKNOWN_PRODUCT = "unknown_product"
    PRICE_MISMATCH = "price_mismatch"
    POLICY_OUT_OF_BOUNDS = "policy_out_of_bounds"


ReasonId = Annotated[Reason | _Name, Field(union_mode="left_to_right")]
"""Why a saga compensated: a canonical `Reason`, or any other a spec's step declares."""


def as_reason(value: str) -> ReasonId:
    """A stored reason read back: the canonical `Reason` when it is one."""
    return Reason(value) if value in Reason._value2member_map_ else value


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"
    NOOP = "noop"
    REJECTED = "rejected"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LineItem(_Model):
    product_id: Identifier
    quantity: StrictInt = Field(gt=0, le=10_000)
    unit_price_cents: StrictInt = Field(ge=0, le=100_000_000)


class ShippingAddress(_Model):
    name: Text = Field(min_length=1, max_length=200)
    street: Text = Field(min_length=1, max_length=200)
    city: Text = Field(min_length=1, max_length=100)
    postal_code: Text = Field(min_length=1, max_length=20)
    country: str = Field(pattern=r"^[A-Z]{2}$")


class OrderRequest(_Model):
    """A customer's order: charged at its total, then points deducted from the balance."""

    order_id: Identifier
    customer_id: Identifier
    items: list[LineItem] = Field(min_length=1, max_length=100)
    payment_method: Text = Field(min_length=1, max_length=64)
    points_to_use: StrictInt = Field(default=0, ge=0, le=100_000_000)
    shipping_address: ShippingAddress

    @field_validator("items")
    @classmethod
    def _one_line_per_product(cls, items: list[LineItem]) -> list[LineItem]:
        seen: set[str] = set()
        for item in items:
            if item.product_id in seen:
                raise ValueError(f"product {item.product_id!r} appears twice; merge the lines")
            seen.add(item.product_id)
        return items

    @property
    def total_cents(self) -> int:
        return sum(item.quantity * item.unit_price_cents for item in self.items)


class SagaPolicy(_Model):
    """Timing and retry rules both variants apply identically (the comparison depends on it)."""

    deadline_s: float = Field(default=30.0, gt=0)
    """Business deadline: a saga not past its pivot by then is cancelled and compensated."""
    attempt_timeout_s: float = Field(default=5.0, gt=0)
    """An attempt that has not answered by then counts as a technical failure (a hang)."""
    initial_backoff_s: float = Field(default=0.1, gt=0)
    backoff_factor: float = Field(default=2.0, ge=1)
    max_backoff_s: float = Field(default=2.0, gt=0)
    compensation_attempts: int = Field(default=5, ge=1)
    """Retry budget of each compensation; when spent the saga ends NEEDS_INTERVENTION."""

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1`` (attempts count from 1)."""
        delay = self.initial_backoff_s * self.backoff_factor ** (attempt - 1)
        return float(min(self.max_backoff_s, delay))


class StepRequest(_Model):
    """What every step and compensation receives: the whole order travels with the saga."""

    saga_id: Identifier
    order: OrderRequest
    attempt: int = Field(default=1, ge=1)
    round: int = Field(default=0, ge=0)
    """0 for the saga's own run; n for an operator's n-th retry (of a failed compensation, or
    of the failed step past the pivot)."""


class StepResult(_Model):
    """What a step or compensation did; ``replayed`` marks an idempotent repeat."""

    saga_id: str
    step: StepId
    status: StepStatus
    detail: dict[str, Any] = Field(default_factory=dict)
    reason: ReasonId | None = None
    message: str = ""
    replayed: bool = False


class StepState(_Model):
    step: StepId
    phase: Phase
    status: StepStatus
    attempts: int = 0


class Action(StrEnum):
    """What an operator can do to a saga waiting for one (NEEDS_INTERVENTION)."""

    RETRY_COMPENSATION = "retry_compensation"
    RETRY_STEP = "retry_step"
    """Run the failed step past the pivot again (and the steps after it): nothing past the
    pivot is undone, so a saga stopped there can only go forward."""
    RESOLVE = "resolve"


class ActionResult(StrEnum):
    PENDING = "pending"
    """Asked for; its effect is not known yet."""
    COMPENSATED = "compensated"
    """Every failed compensation succeeded on the retry: the saga is COMPENSATED."""
    COMPLETED = "completed"
    """The retried step past the pivot (and every step after it) succeeded: COMPLETED."""
    STILL_FAILING = "still_failing"
    """A compensation, or the retried step, failed again: the saga still waits."""
    NOTHING_TO_RETRY = "nothing_to_retry"
    """Nothing of that kind had failed: no compensation (the saga stopped past its pivot),
    or no step past the pivot (a compensation failed)."""
    RESOLVED = "resolved"
    """Marked resolved by hand: the saga no longer waits (its state is as it was)."""


class OperatorAction(_Model):
    """One operator action on a saga: who, when, what, and what came of it."""

    action: Action
    who: str = Field(min_length=1, max_length=100)
    at: float
    note: str = ""
    result: ActionResult = ActionResult.PENDING
    round: int = 0
    """A retry's round (its compensations, or its step, run as that round); 0 otherwise."""


class SagaOutcome(_Model):
    """The terminal (or live) state of one saga, identical in shape for both variants.

    NEEDS_INTERVENTION is settled (the saga waits for an operator, its effects as they are);
    ``actions`` lists what operators did since, and ``resolved`` says one closed it by hand.
    """

    saga_id: str
    order_id: str
    status: SagaStatus
    reason: ReasonId | None = None
    failed_step: StepId | None = None
    failed_compensations: list[StepId] = Field(default_factory=list)
    steps: list[StepState] = Field(default_factory=list)
    actions: list[OperatorAction] = Field(default_factory=list)

    @property
    def resolved(self) -> bool:
        return any(a.result is ActionResult.RESOLVED for a in self.actions)


class Charge(_Model):
    saga_id: str
    customer_id: str
    amount_cents: int
    refunded_cents: int


class Shipment(_Model):
    saga_id: str
    order_id: str
    status: str


class OrderRecord(_Model):
    saga_id: str
    order_id: str
    total_cents: int
    status: SagaStatus
    reason: ReasonId | None = None


class BusinessState(_Model):
    """Every service's business data after a run: what equivalence and invariants compare."""

    stock: dict[str, int]
    reserved: dict[str, dict[str, int]]
    charges: list[Charge]
    points: dict[str, int]
    shipments: list[Shipment]
    orders: list[OrderRecord]
    extra: dict[str, dict[str, int]] = Field(default_factory=dict)
    """The state of each service beyond the order saga's five (`StatePart`), by its name."""
