"""Points: deducts the points used (or says ``skipped``); restores them when handed back."""

from __future__ import annotations

from choreography.events import Event, Kind
from choreography.participants.base import (
    Fenced,
    Participant,
    Reaction,
    StepReactions,
    annotate,
    forward,
    refuse,
)
from shared.contracts import ServiceName, StepName, StepStatus
from shared.saga import applies

SERVICE = ServiceName.POINTS
STEP = StepName.DEDUCT_POINTS
_on = StepReactions(STEP)


async def deduct_or_skip(p: Participant, event: Event, attempt: int) -> None:
    """An order without points passes straight on: the step is skipped, not run as a no-op."""
    if applies(STEP, event.order):
        return await forward(p, STEP, event, attempt)
    annotate(STEP)
    await p.cancel_handled(event.saga_id)
    if event.saga_id in p.fenced_sagas:
        return await refuse(p, STEP, event, attempt)
    skipped = event.follow(Kind.POINTS_SKIPPED, step=STEP, status=StepStatus.SKIPPED)
    try:
        await p.commit(event, [skipped], check_fence=True)
    except Fenced:
        await refuse(p, STEP, event, attempt)


REACTIONS: dict[Kind, Reaction] = {
    Kind.PAYMENT_CHARGED: deduct_or_skip,
    Kind.POINTS_FAILED: _on.own_failure,
    Kind.SHIPPING_CANCELLED: _on.handback,
    Kind.SHIPPING_COMPENSATION_FAILED: _on.handback,
    Kind.SHIPPING_REFUSED: _on.handback,
    Kind.ORDER_CANCEL_REQUESTED: _on.cancel,
}
