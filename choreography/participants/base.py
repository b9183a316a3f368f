"""What every participant is: a service's store, its reaction table, and one transaction per
reaction — the inbox row, the step (if any) and the events out commit together.

A reaction that runs a step writes its inbox and outbox rows through the step's own ``within``
hook (`Writer`); one that runs no step commits them alone (`Participant.commit`). Committed
events go to the relay only after the commit. What a saga may still do here is in the
service's step log (see `cancel.py`); the participant only remembers which sagas have an
attempt running right now, so a fence does not answer for an attempt still under way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from pydantic import ValidationError

from choreography import inbox, outbox
from choreography.bus import Delivery, Outgoing, Poison
from choreography.events import Event, Routing
from shared.contracts import StepRequest, StepResult
from shared.errors import BusinessFailure, TransientFailure
from shared.services import Domain
from shared.steps import run_step
from shared.store import Store, Tx
from shared.telemetry import SAGA_PHASE, SAGA_STEP

VARIANT = "choreography"

Reaction = Callable[["Participant", Event, int], Awaitable[None]]


@dataclass
class Participant:
    """One service's participant: its store, its reaction table, the relay to wake."""

    service: str
    domain: Domain
    reactions: Mapping[str, Reaction]
    routing: Routing = field(default_factory=Routing)
    hand_over: Callable[[list[Outgoing | None]], None] = lambda rows: None
    """Gives committed outbox rows to the relay (the host's, whatever life it is in)."""
    running: set[str] = field(default_factory=set)
    """Sagas with an attempt of a step running in this process (it will answer for itself)."""

    @property
    def store(self) -> Store:
        return self.domain.services[self.service].store

    @property
    def consumer(self) -> str:
        return str(self.service)

    async def prepare(self) -> None:
        """Nothing to load: everything a participant needs is in its store."""

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler: decode, dedupe through the inbox, react; raises Retry or Poison."""
        event = decode(delivery, self.routing)
        reaction = self.reactions.get(event.kind)
        if reaction is None:
            raise Poison(f"{self.service} has no reaction to {event.kind}")
        redelivered = delivery.num_delivered > 1
        if redelivered and await inbox.seen(self.store, self.consumer, event.event_id):
            return  # its effect already committed: ack and move on
        # A first delivery skips the read: a copy published twice still changes nothing, as
        # the step, the inbox row and the outbox rows are all idempotent in the transaction.
        await reaction(self, event, delivery.num_delivered)

    async def attempt(self, step: str, event: Event, attempt: int, within: Writer) -> StepResult:
        """One attempt of a step through the shared runner, bounded by the attempt timeout."""
        request = StepRequest(
            saga_id=event.saga_id, order=event.order, attempt=attempt, round=event.round
        )
        # A report held back after the commit holds the step's events back too: the relay's
        # poll must not publish what the step has not reported yet.
        within.hold_s = event.faults.decide(event.saga_id, step, attempt, event.round).delay_after_s
        self.running.add(event.saga_id)
        try:
            async with asyncio.timeout(event.policy.attempt_timeout_s):
                result = await run_step(
                    self.domain, step, request, variant=VARIANT, faults=event.faults, within=within
                )
        except (BusinessFailure, TransientFailure, TimeoutError):
            if within.called:  # raised after the commit: the events are durable, send them
                self.hand_over(within.rows)
            raise
        finally:
            self.running.discard(event.saga_id)
        self.hand_over(within.rows)
        return result

    async def commit(self, trigger: Event, outgoing: Iterable[Event] = ()) -> None:
        """A transaction of the participant's own: the inbox row and the events out."""
        events = list(outgoing)
        rows = await self.store.run(
            lambda tx: self.record(tx, trigger, events), key=trigger.saga_id
        )
        self.hand_over(rows)

    def record(self, tx: Tx, trigger: Event, outgoing: Iterable[Event]) -> list[Outgoing | None]:
        """Inbox row and outbox rows in the caller's transaction (a plain function)."""
        inbox.record(tx, self.consumer, trigger.event_id, trigger.subject)
        return [outbox.add(tx, event) for event in outgoing]


@dataclass
class Writer:
    """The ``within`` hook: the inbox row and the events out, committed with the step itself."""

    participant: Participant
    trigger: Event
    outgoing: Callable[[StepResult], list[Event]]
    called: bool = False
    rows: list[Outgoing | None] = field(default_factory=list)
    hold_s: float = 0.0
    """How long the step holds its report back after the commit (an injected fault): the
    events out are held from the relays' polls as long, and a lease more."""

    def __call__(self, tx: Tx, result: StepResult) -> None:
        self.rows = self.participant.record(tx, self.trigger, self.outgoing(result))
        if self.hold_s:
            held = [row.msg_id for row in self.rows if row is not None]
            outbox.hold(tx, held, time.time() + self.hold_s + outbox.LEASE_S)
        self.called = True


def decode(delivery: Delivery, routing: Routing) -> Event:
    """The event of a delivery; anything that is not a well-formed saga event is poison."""
    parsed = routing.parse_subject(delivery.subject)
    if parsed is None:
        raise Poison(f"not a saga subject: {delivery.subject}")
    try:
        event = Event.model_validate_json(delivery.data)
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        raise Poison(f"undecodable event on {delivery.subject}: {problem}") from None
    if (event.kind, event.saga_id) != parsed:
        raise Poison(f"event {event.kind}/{event.saga_id} published on {delivery.subject}")
    return event


def annotate(p: Participant, step: str) -> None:
    """Name the step on the consumer's process span (the canonical saga.* attributes)."""
    phase = p.routing.saga.phase_of(step)
    trace.get_current_span().set_attributes({SAGA_STEP: step, SAGA_PHASE: phase.value})
