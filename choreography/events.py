"""Saga events: their kinds and subjects, the envelope they carry, and which step emits which.

Subjects are ``saga.<service>.<event>.<saga_id>``, events in past tense. The last token is
the saga id (the order's saga): an order id may be run more than once (the harness re-runs
scenarios), a saga id never is, and it is what the consumers order and dedupe by.

An event carries everything the next participant needs: the order, the fault plan, the
policy, when the saga started and the trail of forward steps that acted so far. Nobody reads
another service's store, and a compensation is only ever addressed to a service on the trail.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import (
    OrderRequest,
    Reason,
    SagaPolicy,
    ServiceName,
    StepName,
    StepStatus,
)
from shared.faults import FaultPlan
from shared.saga import FORWARD_STEPS, compensation_of, forward_of

ROOT = "saga"
SAGA_ID_HEADER = "Saga-Id"
MSG_ID_HEADER = "Nats-Msg-Id"


class Kind(StrEnum):
    """Every event of the saga as ``<service>.<event>``; the subject adds root and saga id."""

    ORDER_PLACED = "order.placed"
    ORDER_CANCEL_REQUESTED = "order.cancel_requested"
    ORDER_COMPLETED = "order.completed"
    ORDER_FAILED = "order.failed"

    INVENTORY_RESERVED = "inventory.reserved"
    INVENTORY_FAILED = "inventory.failed"
    INVENTORY_RELEASED = "inventory.released"
    INVENTORY_COMPENSATION_FAILED = "inventory.compensation_failed"
    INVENTORY_REFUSED = "inventory.refused"

    PAYMENT_CHARGED = "payment.charged"
    PAYMENT_FAILED = "payment.failed"
    PAYMENT_REFUNDED = "payment.refunded"
    PAYMENT_COMPENSATION_FAILED = "payment.compensation_failed"
    PAYMENT_REFUSED = "payment.refused"

    POINTS_DEDUCTED = "points.deducted"
    POINTS_SKIPPED = "points.skipped"
    POINTS_FAILED = "points.failed"
    POINTS_RESTORED = "points.restored"
    POINTS_COMPENSATION_FAILED = "points.compensation_failed"
    POINTS_REFUSED = "points.refused"

    SHIPPING_CREATED = "shipping.created"
    SHIPPING_FAILED = "shipping.failed"
    SHIPPING_CANCELLED = "shipping.cancelled"
    SHIPPING_COMPENSATION_FAILED = "shipping.compensation_failed"
    SHIPPING_REFUSED = "shipping.refused"

    @property
    def pattern(self) -> str:
        """The consumer filter for this kind across every saga."""
        return f"{ROOT}.{self.value}.*"

    @property
    def template(self) -> str:
        """The destination template (OTel ``messaging.destination.template``) span names use."""
        return f"{ROOT}.{self.value}.{{saga_id}}"


TOKEN = {
    ServiceName.INVENTORY: "inventory",
    ServiceName.PAYMENT: "payment",
    ServiceName.POINTS: "points",
    ServiceName.SHIPPING: "shipping",
    ServiceName.ORDERS: "order",
}
"""The service token in subjects (the orders service speaks as ``order``)."""

DONE: dict[StepName, Kind] = {
    StepName.RESERVE_INVENTORY: Kind.INVENTORY_RESERVED,
    StepName.CHARGE_PAYMENT: Kind.PAYMENT_CHARGED,
    StepName.DEDUCT_POINTS: Kind.POINTS_DEDUCTED,
    StepName.CREATE_SHIPMENT: Kind.SHIPPING_CREATED,
    StepName.COMPLETE_ORDER: Kind.ORDER_COMPLETED,
}
FAILED: dict[StepName, Kind] = {
    StepName.RESERVE_INVENTORY: Kind.INVENTORY_FAILED,
    StepName.CHARGE_PAYMENT: Kind.PAYMENT_FAILED,
    StepName.DEDUCT_POINTS: Kind.POINTS_FAILED,
    StepName.CREATE_SHIPMENT: Kind.SHIPPING_FAILED,
    StepName.COMPLETE_ORDER: Kind.ORDER_FAILED,
}
REFUSED: dict[StepName, Kind] = {
    StepName.RESERVE_INVENTORY: Kind.INVENTORY_REFUSED,
    StepName.CHARGE_PAYMENT: Kind.PAYMENT_REFUSED,
    StepName.DEDUCT_POINTS: Kind.POINTS_REFUSED,
    StepName.CREATE_SHIPMENT: Kind.SHIPPING_REFUSED,
}
"""A fenced participant refusing a late forward trigger: hands the chain back, undoes nothing."""
COMPENSATED: dict[StepName, Kind] = {
    StepName.RELEASE_INVENTORY: Kind.INVENTORY_RELEASED,
    StepName.REFUND_PAYMENT: Kind.PAYMENT_REFUNDED,
    StepName.RESTORE_POINTS: Kind.POINTS_RESTORED,
    StepName.CANCEL_SHIPMENT: Kind.SHIPPING_CANCELLED,
}
COMPENSATION_FAILED: dict[StepName, Kind] = {
    StepName.RELEASE_INVENTORY: Kind.INVENTORY_COMPENSATION_FAILED,
    StepName.REFUND_PAYMENT: Kind.PAYMENT_COMPENSATION_FAILED,
    StepName.RESTORE_POINTS: Kind.POINTS_COMPENSATION_FAILED,
    StepName.CANCEL_SHIPMENT: Kind.SHIPPING_COMPENSATION_FAILED,
}
TRIGGER: dict[StepName, tuple[Kind, ...]] = {
    StepName.RESERVE_INVENTORY: (Kind.ORDER_PLACED,),
    StepName.CHARGE_PAYMENT: (Kind.INVENTORY_RESERVED,),
    StepName.DEDUCT_POINTS: (Kind.PAYMENT_CHARGED,),
    StepName.CREATE_SHIPMENT: (Kind.POINTS_DEDUCTED, Kind.POINTS_SKIPPED),
    StepName.COMPLETE_ORDER: (Kind.SHIPPING_CREATED,),
}
"""The events that start each forward step (points always answers, ``skipped`` when unused)."""

OPTIONAL_STEPS = frozenset({StepName.DEDUCT_POINTS})
"""Forward steps `shared.saga.applies` may skip: a compensation chain can jump over them."""

HANDBACKS = frozenset({*REFUSED.values(), *COMPENSATED.values(), *COMPENSATION_FAILED.values()})
"""Events that pass the compensation chain to the previous service that acted."""


def subject(kind: Kind, saga_id: str) -> str:
    return f"{ROOT}.{kind.value}.{saga_id}"


def parse_subject(value: str) -> tuple[Kind, str] | None:
    """The kind and saga id of a saga subject, or None for anything else."""
    parts = value.split(".")
    if len(parts) != 4 or parts[0] != ROOT:
        return None
    try:
        return Kind(f"{parts[1]}.{parts[2]}"), parts[3]
    except ValueError:
        return None


def saga_key(value: str) -> str:
    """The saga id token of a subject, used to keep one saga's events in order."""
    return value.rsplit(".", 1)[-1]


def event_id(saga_id: str, kind: Kind) -> str:
    """Deterministic: a saga emits each kind at most once, so a repeat is a duplicate."""
    return f"{saga_id}:{kind.value}"


def previous_actor(trail: tuple[StepName, ...], before: StepName) -> StepName | None:
    """The last forward step on the trail ahead of ``before``: whose turn it is to compensate."""
    order = FORWARD_STEPS.index(before)
    earlier = [step for step in trail if FORWARD_STEPS.index(step) < order]
    return earlier[-1] if earlier else None


def handback_sources(step: StepName) -> tuple[Kind, ...]:
    """Handback events that may address ``step``: from later steps, jumping optional ones."""
    kinds: list[Kind] = []
    for later in FORWARD_STEPS[FORWARD_STEPS.index(step) + 1 :]:
        compensation = compensation_of(later)
        if compensation is None:
            break
        kinds += [COMPENSATED[compensation], COMPENSATION_FAILED[compensation], REFUSED[later]]
        if later not in OPTIONAL_STEPS:
            break
    return tuple(kinds)


def sender_step(kind: Kind) -> StepName | None:
    """The forward step whose service emitted a handback (or result) event."""
    for table in (DONE, FAILED, REFUSED):
        for step, candidate in table.items():
            if candidate is kind:
                return step
    for table in (COMPENSATED, COMPENSATION_FAILED):
        for compensation, candidate in table.items():
            if candidate is kind:
                return forward_of(compensation)
    return None


class Event(BaseModel):
    """The envelope of every saga event: the saga's data travels with it, hop to hop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    kind: Kind
    saga_id: str
    order: OrderRequest
    faults: FaultPlan = Field(default_factory=FaultPlan)
    policy: SagaPolicy = Field(default_factory=SagaPolicy)
    started_at: float
    """Wall-clock start of the saga (epoch seconds): the business deadline counts from it."""
    trail: tuple[StepName, ...] = ()
    """Forward steps that acted (or, on a cancel, were started) so far, in order."""
    step: StepName | None = None
    status: StepStatus | None = None
    attempts: int = 0
    reason: Reason | None = None
    message: str = ""

    @property
    def subject(self) -> str:
        return subject(self.kind, self.saga_id)

    @property
    def deadline_at(self) -> float:
        return self.started_at + self.policy.deadline_s

    def follow(self, kind: Kind, **changes: object) -> Event:
        """The next event of the same saga, carrying the saga's data on."""
        fields: dict[str, object] = {
            "event_id": event_id(self.saga_id, kind),
            "kind": kind,
            "step": None,
            "status": None,
            "attempts": 0,
            "message": "",
        }
        fields.update(changes)
        return self.model_copy(update=fields)


def placed(
    saga_id: str, order: OrderRequest, faults: FaultPlan, policy: SagaPolicy, started_at: float
) -> Event:
    """The saga's first event, written with the order record."""
    return Event(
        event_id=event_id(saga_id, Kind.ORDER_PLACED),
        kind=Kind.ORDER_PLACED,
        saga_id=saga_id,
        order=order,
        faults=faults,
        policy=policy,
        started_at=started_at,
    )
