"""The reactions of a step up to the pivot: run or skip it, compensate it, pass the chain on.

- `forward`: the previous step's ``done`` (or ``skipped``) runs the step; its result event is
  written by the step's own transaction, with the inbox row: ``done`` (the step joins the
  trail), ``failed``, or ``refused`` when a tombstone refused it (`cancel.py`). A step that
  does not apply to the order is recorded skipped and answers ``skipped``.
- `own_failure`: the service that failed compensates itself first (a recorded no-op).
- `handback`: a later service finished its part of the chain; this service compensates only
  when the trail says it is the previous one that acted.
- `cancel`: the fence (`cancel.py`).
- `retry`: an operator's command (``<service>.retry_compensation``, round n): the compensation
  runs again with a fresh budget (as round n); its answer (``refunded`` ...,
  or ``compensation_failed``, marked with the round) goes to the tracker only — the chain
  went on long ago, so no hand-back follows.

A compensation retries with the saga's backoff for ``policy.compensation_attempts``
deliveries, then emits ``compensation_failed`` and the chain goes on.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from choreography import attempts
from choreography.bus import Retry
from choreography.events import Event, Routing
from choreography.participants import cancel
from choreography.participants.base import Participant, Writer, annotate
from shared.contracts import ReasonId, StepRequest, StepResult, StepStatus
from shared.errors import BusinessFailure, StepRejected, TransientFailure
from shared.services.audit import reported


def forward_events(
    p: Participant, trigger: Event, step: str, result: StepResult, attempt: int
) -> list[Event]:
    """Done: pass the saga on with the step on the trail; failed: start compensating."""
    if result.status is StepStatus.DONE:
        done = p.routing.done(step)
        trail = (*trigger.trail, step)
        return [
            trigger.follow(
                done,
                trail=trail,
                step=step,
                status=result.status,
                attempts=attempt,
                detail=reported(result.detail),
            )
        ]
    if result.status is StepStatus.SKIPPED:
        return [trigger.follow(p.routing.skipped(step), step=step, status=StepStatus.SKIPPED)]
    if result.status is StepStatus.FAILED:
        return [failed_event(p.routing, trigger, step, result.reason, result.message, attempt)]
    return [cancel.refused(p, step, trigger, attempt)]


def failed_event(
    routing: Routing, trigger: Event, step: str, reason: ReasonId | None, message: str, attempt: int
) -> Event:
    return trigger.follow(
        routing.failed(step),
        round=trigger.round,  # the round of the trigger: 0, or an operator's retry of the step
        step=step,
        status=StepStatus.FAILED,
        attempts=attempt,
        reason=reason,
        message=message,
    )


async def forward(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Run a forward step; its result (done, failed or refused) leaves with its commit."""
    annotate(p, step)
    writer = Writer(p, event, lambda r: forward_events(p, event, step, r, attempt))
    try:
        await p.attempt(step, event, attempt, writer)
    except StepRejected:
        if not writer.called:  # refused before the service's transaction: the tombstone
            await cancel.refuse(p, step, event, attempt)
    except BusinessFailure as failure:
        if not writer.called:  # refused before the service's transaction (by a middleware)
            failed = failed_event(p.routing, event, step, failure.reason, failure.message, attempt)
            await p.commit(event, [failed])
    except (TransientFailure, TimeoutError) as error:
        await attempts.note_failed(p.store, event.saga_id, step, attempt)
        raise Retry(event.policy.backoff(attempt), str(error) or "attempt timed out") from None


async def skip(p: Participant, step: str, event: Event, attempt: int) -> None:
    """A step that does not apply passes the saga straight on (``skipped``), never run."""
    annotate(p, step)
    writer = Writer(p, event, lambda r: forward_events(p, event, step, r, attempt))
    request = StepRequest(saga_id=event.saga_id, order=event.order, attempt=attempt)
    with contextlib.suppress(StepRejected):  # fenced: ``refused`` is written with the inbox row
        await p.domain.service_of(step).skip(request, step, within=writer)
    p.hand_over(writer.rows)


async def compensate(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Run the step's compensation; a spent budget or a refusal emits compensation_failed."""
    compensation = p.routing.saga.compensation_of(step)
    assert compensation is not None
    annotate(p, compensation)

    def outgoing(result: StepResult) -> list[Event]:
        kind = p.routing.compensated(step)
        return [
            event.follow(
                kind,
                round=event.round,
                step=compensation,
                status=result.status,
                attempts=attempt,
                reason=event.reason,
            )
        ]

    writer = Writer(p, event, outgoing)
    try:
        await p.attempt(compensation, event, attempt, writer)
    except BusinessFailure as failure:
        await compensation_failed(p, compensation, event, attempt, failure.message)
    except (TransientFailure, TimeoutError) as error:
        message = str(error) or "timed out"
        if attempt < event.policy.compensation_attempts:
            raise Retry(event.policy.backoff(attempt), message) from None
        if not writer.called:  # committed before the error surfaced: it did not fail
            await compensation_failed(p, compensation, event, attempt, message)


async def compensation_failed(
    p: Participant, compensation: str, event: Event, attempt: int, message: str
) -> None:
    """The budget is spent or the compensation refused: say so and let the chain go on."""
    failed = event.follow(
        p.routing.compensation_failed(compensation),
        round=event.round,
        step=compensation,
        status=StepStatus.FAILED,
        attempts=attempt,
        reason=event.reason,
        message=message,
    )
    await p.commit(event, [failed])


async def handback(p: Participant, step: str, event: Event, attempt: int) -> None:
    """A later service is done compensating; continue only if this service is next to undo."""
    meaning = p.routing.meaning(event.kind)
    if meaning is None or meaning.step is None:
        return
    if event.round > 0 or p.routing.previous_actor(event.trail, meaning.step) != step:
        return await p.commit(event)  # not addressed to this service (or an operator's round)
    await compensate(p, step, event, attempt)


@dataclass(frozen=True)
class StepReactions:
    """The four reactions of a compensatable step's service, bound to that step."""

    step: str

    async def forward(self, p: Participant, event: Event, attempt: int) -> None:
        if p.routing.saga.applies(self.step, event.order):
            await forward(p, self.step, event, attempt)
        else:
            await skip(p, self.step, event, attempt)

    async def own_failure(self, p: Participant, event: Event, attempt: int) -> None:
        """This service's step failed: its own compensation (a recorded no-op) starts the chain."""
        await compensate(p, self.step, event, attempt)

    async def handback(self, p: Participant, event: Event, attempt: int) -> None:
        await handback(p, self.step, event, attempt)

    async def cancel(self, p: Participant, event: Event, attempt: int) -> None:
        await cancel.cancel(p, self.step, event, attempt)

    async def retry(self, p: Participant, event: Event, attempt: int) -> None:
        """An operator's retry of this service's compensation (a fresh budget, round n)."""
        await compensate(p, self.step, event, attempt)
