"""Inventory: reserves stock when an order is placed; releases it when the chain comes back."""

from __future__ import annotations

from choreography.events import Kind
from choreography.participants.base import Reaction, StepReactions
from shared.contracts import ServiceName, StepName

SERVICE = ServiceName.INVENTORY
STEP = StepName.RESERVE_INVENTORY
_on = StepReactions(STEP)

REACTIONS: dict[Kind, Reaction] = {
    Kind.ORDER_PLACED: _on.forward,
    Kind.INVENTORY_FAILED: _on.own_failure,
    Kind.PAYMENT_REFUNDED: _on.handback,
    Kind.PAYMENT_COMPENSATION_FAILED: _on.handback,
    Kind.PAYMENT_REFUSED: _on.handback,
    Kind.ORDER_CANCEL_REQUESTED: _on.cancel,
}
