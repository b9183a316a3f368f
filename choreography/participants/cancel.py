"""The cancel protocol of the choreography, whole: overtaking, the fence, the trail, the refusal.

A cancel (the customer's, or the tracker's deadline: ``order.cancel_requested``) reaches every
service that has a step up to the pivot.

- **Overtaking** (`lane_key`): a service handles one saga's events in order, but the cancel
  is outside the saga's lane, so it reaches a step that is still queued or in flight.
- **The fence** (`cancel`): the service fences its step in one transaction of its own store
  (`shared.services.base.fence`), through the process's step middleware like any step:
  - the step has not committed: a tombstone is written. The step is dead here: an attempt
    under way, or a trigger still to come, meets the tombstone in its own transaction and is
    refused;
  - the step committed first ("acted"): the fence undoes nothing. The service waits for the
    chain to come back to it. When the step is the pivot its commit wins: the cancel is void;
  - the step failed: the saga compensates for that already; the fence changes nothing.
- **The trail**: the cancel carries the trail of steps whose trigger was sent. A fenced step
  on the trail will never report ``done``, so the fence answers for it at once with a
  **refusal** (``<service>.refused``), a hand-back: the previous service that acted
  compensates, and the chain goes on. A fenced step not on the trail was never triggered;
  the service before it answers for the saga (its own fence, or its compensation).
- **The refusal** (`refused`, `refuse`) has a deterministic event id, so the fence's answer and
  the answer of an attempt that meets the tombstone later are one event, published once. It
  says how many attempts the step made: the service records each failed attempt of a forward
  step (`choreography/attempts.py`, on the failure path only), so a step that kept failing or
  hanging until the cancel reports its tries as the workflow's does.

Everything the protocol needs is in the service's store (its step log, its failed attempts)
and the event: no flag, nothing in memory — a restarted service knows all it needs. An attempt
that was under way when the fence answered may still run until it meets the tombstone; it can
no longer change anything. A compensation that runs before its forward step (a hand-back
overtaking a trigger) writes the same tombstone, so the same refusal follows. The orchestration
runs the same fence, through the same service, while the step's activity is in flight.
"""

from __future__ import annotations

from choreography import attempts
from choreography.bus import Outgoing
from choreography.events import CANCEL_REQUESTED, Event, saga_key, subject
from choreography.participants.base import VARIANT, Participant, annotate
from shared.contracts import StepStatus
from shared.services import Fence
from shared.steps import run_fence
from shared.store import Tx


def lane_key(value: str) -> str | None:
    """The lane of a subject: its saga; a cancel has none, so it overtakes the saga's queue."""
    key = saga_key(value)
    return None if value == subject(CANCEL_REQUESTED, key) else key


async def cancel(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Fence this service's step for the saga and answer for it if the trail says it was
    triggered (see the module docstring)."""
    annotate(p, step)
    rows: list[Outgoing | None] = []

    def answer(tx: Tx, found: Fence) -> None:
        triggered = found is Fence.FENCED and step in event.trail
        tried = attempts.made(tx, event.saga_id, step) if triggered else 0
        rows.extend(p.record(tx, event, [refused(p, step, event, tried)] if triggered else []))

    await run_fence(
        p.domain, event.saga_id, step, variant=VARIANT, middleware=p.middleware, within=answer
    )
    p.hand_over(rows)


def refused(p: Participant, step: str, trigger: Event, attempt: int) -> Event:
    """The hand-back of a step its tombstone refused: it undid nothing, the chain goes on."""
    return trigger.follow(
        p.routing.refused(step), step=step, status=StepStatus.REJECTED, attempts=attempt
    )


async def refuse(p: Participant, step: str, trigger: Event, attempt: int) -> None:
    """A trigger refused before it reached the service's transaction: say so, once."""
    await p.commit(trigger, [refused(p, step, trigger, attempt)])
