"""The cancel protocol: one rule, kept in each service's own step log.

A cancel (the customer's, or the tracker's deadline: ``order.cancel_requested``) reaches every
service that has a step up to the pivot, overtaking its saga's queue there. Each service
*fences* its step in one transaction of its own store (`shared.services.base.fence`):

- the step has not committed: a tombstone is written. The step is dead here, and the service
  answers ``<service>.refused``, a hand-back: the previous service that acted compensates,
  and the chain goes on from there. An attempt running here answers for itself when it ends
  (the tombstone makes it REJECTED in the service's own transaction), so nothing of the step
  is still under way when the saga settles; otherwise the fence answers at once when the
  cancel's trail says the trigger was sent (waiting for a retry, or even dead-lettered), or
  the trigger is refused when it comes (a later attempt is refused before its faults). The
  refusal's deterministic id makes any two answers one;
- the step committed first ("acted"): nothing is undone by the fence. The service waits for
  the chain to come back to it (the service after it refuses or compensates). When the step
  is the pivot, its commit wins: the cancel is void and the saga completes;
- the step failed: the saga compensates for that already; the fence changes nothing.

A compensation that runs before its forward step (a hand-back overtaking a trigger) writes the
same tombstone, so the same refusal follows. Everything is in the service's step log, checked
in the same transaction as the step: no fence table, no cache, no flag, nothing in memory —
a restarted service knows all it needs. A refusal's event id is deterministic, so a trigger
delivered twice is refused once. The orchestration runs the same fence, through the same
service, while the step's activity is in flight (`orchestration/workflows.py`).
"""

from __future__ import annotations

from choreography.bus import Outgoing
from choreography.events import Event
from choreography.participants.base import Participant, annotate
from shared.contracts import StepStatus
from shared.services import Fence
from shared.store import Tx


async def cancel(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Fence this service's step for the saga (see the module docstring)."""
    annotate(p, step)

    rows: list[Outgoing | None] = []

    def answer(tx: Tx, found: Fence) -> None:
        triggered = found is Fence.FENCED and step in event.trail
        triggered = triggered and event.saga_id not in p.running
        rows.extend(p.record(tx, event, [refused(p, step, event, 1)] if triggered else []))

    await p.domain.fence(event.saga_id, step, within=answer)
    p.hand_over(rows)


def refused(p: Participant, step: str, trigger: Event, attempt: int) -> Event:
    """The hand-back of a step its tombstone refused: it undid nothing, the chain goes on."""
    return trigger.follow(
        p.routing.refused(step), step=step, status=StepStatus.REJECTED, attempts=attempt
    )


async def refuse(p: Participant, step: str, trigger: Event, attempt: int) -> None:
    """A trigger refused before it reached the service's transaction: say so, once."""
    await p.commit(trigger, [refused(p, step, trigger, attempt)])
