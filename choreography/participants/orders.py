"""Orders: completes the order once the shipment exists; the tracker lives beside it."""

from __future__ import annotations

from choreography.bus import Retry
from choreography.events import DONE, FAILED, Event, Kind
from choreography.participants.base import Participant, Reaction, Writer, annotate
from choreography.tracker import Tracker
from shared.contracts import ServiceName, StepName, StepResult, StepStatus
from shared.errors import BusinessFailure, TransientFailure
from shared.store import Tx

SERVICE = ServiceName.ORDERS
STEP = StepName.COMPLETE_ORDER
KINDS = (Kind.SHIPPING_CREATED,)


def reactions(tracker: Tracker) -> dict[Kind, Reaction]:
    """shipping.created -> complete_order (past the pivot: retried until it succeeds)."""

    async def complete(p: Participant, event: Event, attempt: int) -> None:
        annotate(STEP)

        def record(tx: Tx, result: StepResult) -> None:
            tracker.record_completed(tx, event.saga_id, result, attempt)

        writer = Writer(p, event, lambda result: [_result_event(event, result, attempt)])
        writer.extra = record
        try:
            await p.attempt(STEP, event, attempt, writer)
        except BusinessFailure as failure:
            if not writer.called:
                await p.commit(event, [_failed_event(event, failure.message, attempt)])
        except (TransientFailure, TimeoutError) as error:
            raise Retry(event.policy.backoff(attempt), str(error) or "timed out") from None
        finally:
            if writer.called:  # committed, even if an injected fault raised afterwards
                tracker.ended(event.saga_id)

    return {Kind.SHIPPING_CREATED: complete}


def _result_event(trigger: Event, result: StepResult, attempt: int) -> Event:
    """``order.completed``, or ``order.failed`` when the order could not be completed."""
    kind = DONE[STEP] if result.status is StepStatus.DONE else FAILED[STEP]
    return trigger.follow(
        kind,
        trail=(*trigger.trail, STEP),
        step=STEP,
        status=result.status,
        attempts=attempt,
        message=result.message,
    )


def _failed_event(trigger: Event, message: str, attempt: int) -> Event:
    return trigger.follow(
        FAILED[STEP], step=STEP, status=StepStatus.FAILED, attempts=attempt, message=message
    )
