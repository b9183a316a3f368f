"""Shipping, the pivot: creates the shipment; cancels it only if the pivot itself failed."""

from __future__ import annotations

from choreography.events import Kind
from choreography.participants.base import Reaction, StepReactions
from shared.contracts import ServiceName, StepName

SERVICE = ServiceName.SHIPPING
STEP = StepName.CREATE_SHIPMENT
_on = StepReactions(STEP)

REACTIONS: dict[Kind, Reaction] = {
    Kind.POINTS_DEDUCTED: _on.forward,
    Kind.POINTS_SKIPPED: _on.forward,
    Kind.SHIPPING_FAILED: _on.own_failure,
    Kind.ORDER_CANCEL_REQUESTED: _on.cancel,
}
