"""Steps after the pivot: retried until they succeed; a business failure needs a person.

Such a step has no compensation and ignores cancels (past the pivot the saga only goes
forward). Its service reports ``done`` with the step added to the trail, or ``failed``; the
tracker completes the saga on the last step's ``done`` and keeps it waiting for an operator
(NEEDS_INTERVENTION) on a ``failed``. The operator may run the step again: the tracker's
command (``<service>.retry_step``, round n) is a trigger like the others, and the answer
carries its round (``order.completed`` of round n completes the saga).
"""

from __future__ import annotations

from dataclasses import dataclass

from choreography.bus import Retry
from choreography.events import Event, Routing
from choreography.participants.base import Participant, Writer, annotate
from choreography.participants.steps import failed_event
from shared.contracts import StepResult, StepStatus
from shared.errors import BusinessFailure, TransientFailure


@dataclass(frozen=True)
class Onward:
    """The one reaction of a step after the pivot: its trigger (or an operator's retry) runs
    it."""

    step: str

    async def forward(self, p: Participant, event: Event, attempt: int) -> None:
        annotate(p, self.step)
        writer = Writer(p, event, lambda result: [_result(p.routing, event, result, attempt)])
        try:
            await p.attempt(self.step, event, attempt, writer)
        except BusinessFailure as failure:
            if not writer.called:  # refused before the service ran (by a middleware)
                failed = failed_event(
                    p.routing, event, self.step, failure.reason, failure.message, attempt
                )
                await p.commit(event, [failed])
        except (TransientFailure, TimeoutError) as error:
            raise Retry(event.policy.backoff(attempt), str(error) or "timed out") from None


def _result(routing: Routing, trigger: Event, result: StepResult, attempt: int) -> Event:
    """``done`` with the step on the trail, or ``failed`` when the service refused it."""
    if result.status is StepStatus.DONE:
        return trigger.follow(
            routing.done(result.step),
            round=trigger.round,
            trail=(*trigger.trail, result.step),
            step=result.step,
            status=result.status,
            attempts=attempt,
        )
    return trigger.follow(
        routing.failed(result.step),
        round=trigger.round,
        step=result.step,
        status=result.status,
        attempts=attempt,
        message=result.message,
    )
