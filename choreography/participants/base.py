"""What every participant is: a service's store, its reaction table, and one transaction per
reaction — the inbox row, the step (if any) and the events out commit together.

A reaction that runs a step writes its inbox and outbox rows through the step's own ``within``
hook (`Writer`); one that runs no step commits them alone (`Participant.commit`). Committed
events go to the relay only after the commit. What a saga may still do here is in the
service's step log (see `cancel.py`): a participant keeps nothing about a saga in memory.
Every step runs through the process's step middleware (`shared/steps.py`), none in production.

A process that understands several saga definitions (docs/versioning.md) runs one
`Participant` per definition behind one consumer (`Participants`): each event is read as the
process's `Reader` says and handled by the rules of the definition it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from pydantic import ValidationError

from choreography import inbox, outbox
from choreography.bus import Delivery, Outgoing, Poison
from choreography.events import Event, Routing, event_id
from choreography.versions import NotOurs, Reader
from shared.contracts import StepRequest, StepResult
from shared.definition import DefinitionMismatch, DefinitionRef
from shared.errors import BusinessFailure, TransientFailure
from shared.services import Domain
from shared.steps import Chain, run_step
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
    routing: Routing
    hand_over: Callable[[list[Outgoing | None]], None] = lambda rows: None
    """Gives committed outbox rows to the relay (the host's, whatever life it is in)."""
    middleware: Chain = ()
    """The step seam's middleware (none in production)."""
    envelopes: tuple[int, ...] = ()
    """Envelopes each event out is written in besides its own (dual publishing's copies)."""

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
        await self.react(decode(delivery, self.routing), delivery)

    async def react(self, event: Event, delivery: Delivery, *, others: bool = False) -> None:
        """React to a decoded event; with ``others`` an event this definition's table lacks
        is for another definition the consumer is filtered on, and is acknowledged."""
        reaction = self.reactions.get(event.kind)
        if reaction is None:
            if others:
                return
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
        try:
            async with asyncio.timeout(event.policy.attempt_timeout_s):
                result = await run_step(
                    self.domain,
                    step,
                    request,
                    variant=VARIANT,
                    middleware=self.middleware,
                    within=within,
                )
        except (BusinessFailure, TransientFailure, TimeoutError):
            if within.called:  # raised after the commit: the events are durable, send them
                self.hand_over(within.rows)
            raise
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
        rows = []
        for event in outgoing:
            rows.append(outbox.add(tx, event))
            rows += [outbox.add(tx, copy) for copy in copies(event, self.envelopes)]
        return rows


def copies(event: Event, envelopes: tuple[int, ...]) -> list[Event]:
    """Dual publishing: the event in each other envelope, under an id of its own."""
    return [
        event.in_envelope(version).model_copy(
            update={"event_id": f"{event_id(event.saga_id, event.kind, event.round)}~e{version}"}
        )
        for version in envelopes
        if version != event.envelope
    ]


@dataclass
class Participants:
    """A service's participants, one per definition its process understands, behind one
    consumer filtered on all their kinds: each event goes to its definition's participant."""

    service: str
    reader: Reader
    by_definition: Mapping[DefinitionRef, Participant]

    async def prepare(self) -> None:
        for participant in self.by_definition.values():
            await participant.prepare()

    async def handle(self, delivery: Delivery) -> None:
        try:
            event = self.reader.decode(delivery)
        except NotOurs:
            return  # another release's copy: its own consumer group reads it
        participant = self.by_definition[event.definition]
        await participant.react(event, delivery, others=len(self.by_definition) > 1)


@dataclass
class Writer:
    """The ``within`` hook: the inbox row and the events out, committed with the step itself."""

    participant: Participant
    trigger: Event
    outgoing: Callable[[StepResult], list[Event]]
    called: bool = False
    rows: list[Outgoing | None] = field(default_factory=list)

    def __call__(self, tx: Tx, result: StepResult) -> None:
        self.rows = self.participant.record(tx, self.trigger, self.outgoing(result))
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
    try:
        routing.definition.check(event.definition)
    except DefinitionMismatch as mismatch:
        raise Poison(f"{delivery.subject}: {mismatch}") from None
    return event


def annotate(p: Participant, step: str) -> None:
    """Name the step on the consumer's process span (the canonical saga.* attributes)."""
    phase = p.routing.saga.phase_of(step)
    trace.get_current_span().set_attributes({SAGA_STEP: step, SAGA_PHASE: phase.value})
