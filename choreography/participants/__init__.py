"""One participant module per service: the events it reacts to and the events it emits."""

from __future__ import annotations

from choreography.events import Kind
from choreography.participants import inventory, orders, payment, points, shipping
from choreography.participants.base import Participant, Reaction
from choreography.tracker import Tracker
from shared.contracts import ServiceName

__all__ = ["KINDS", "Participant", "Reaction", "reactions_for"]

_STEP_SERVICES = {
    ServiceName.INVENTORY: inventory.REACTIONS,
    ServiceName.PAYMENT: payment.REACTIONS,
    ServiceName.POINTS: points.REACTIONS,
    ServiceName.SHIPPING: shipping.REACTIONS,
}

KINDS: dict[ServiceName, tuple[Kind, ...]] = {
    **{service: tuple(table) for service, table in _STEP_SERVICES.items()},
    ServiceName.ORDERS: orders.KINDS,
}
"""The events each service's consumer is filtered on: exactly those it reacts to."""


def reactions_for(service: ServiceName, tracker: Tracker) -> dict[Kind, Reaction]:
    """The reaction table of a service (the orders service completes and tells its tracker)."""
    if service is ServiceName.ORDERS:
        return orders.reactions(tracker)
    return _STEP_SERVICES[service]
