"""Payment: charges once stock is reserved; refunds when the chain comes back to it."""

from __future__ import annotations

from choreography.events import Kind
from choreography.participants.base import Reaction, StepReactions
from shared.contracts import ServiceName, StepName

SERVICE = ServiceName.PAYMENT
STEP = StepName.CHARGE_PAYMENT
_on = StepReactions(STEP)

REACTIONS: dict[Kind, Reaction] = {
    Kind.INVENTORY_RESERVED: _on.forward,
    Kind.PAYMENT_FAILED: _on.own_failure,
    Kind.POINTS_RESTORED: _on.handback,
    Kind.POINTS_COMPENSATION_FAILED: _on.handback,
    Kind.POINTS_REFUSED: _on.handback,
    # Shipping hands back to payment directly when the order used no points (per the trail).
    Kind.SHIPPING_CANCELLED: _on.handback,
    Kind.SHIPPING_COMPENSATION_FAILED: _on.handback,
    Kind.SHIPPING_REFUSED: _on.handback,
    Kind.ORDER_CANCEL_REQUESTED: _on.cancel,
}
