"""What every participant is: a service's store, its reaction table, and one transaction per
reaction — the inbox row, the step (if any) and the events out commit together.

A reaction that runs a step writes its inbox and outbox rows through the step's own ``within``
hook (`Writer`); one that runs no step commits them alone (`Participant.commit`). Committed
events go to the relay only after the commit. What a saga may still do here is in the
service's step log (see `cancel.py`): a participant keeps nothing about a saga in memory.
Every step runs through the process's step middleware (`shared/steps.py`), none in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from pydantic import ValidationError

from choreography import inbox, outbox
from choreography.bus import Delivery, Outgoing, Poison
from choreography.events import Event, Routing
from shared.contracts import StepRequest, StepResult
from shared.definition import DefinitionMismatch
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
        return [outbox.add(tx, event) for event in outgoing]


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
