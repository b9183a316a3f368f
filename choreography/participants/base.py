"""What every participant does: an event in, one shared step in a local transaction, events out.

The reactions a service module puts in its table:

- `forward`: run the service's step; its result event (``reserved``, ``failed`` ...) is written
  by the step's own transaction through the ``within`` hook, with the inbox row.
- `own_failure`: the service that failed compensates itself first (a recorded no-op).
- `handback`: a later service finished its part of the compensation chain; the service
  compensates only when the trail says it is the previous one that acted.
- `cancel`: the deadline or the customer. A step that is done waits for the chain to come
  back; a step in flight (on the cancel's trail) compensates now, which tombstones it; a step
  never reached only puts up a fence, so a late trigger is refused and handed back.

A compensation retries with the saga's backoff for ``policy.compensation_attempts``
deliveries, then emits ``compensation_failed`` and the chain goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from opentelemetry import trace
from pydantic import ValidationError

from choreography import inbox, outbox
from choreography.bus import Delivery, Outgoing, Poison, Retry
from choreography.events import CANCEL_REQUESTED, Event, Routing
from shared.contracts import StepRequest, StepResult, StepStatus
from shared.errors import BusinessFailure, StepRejected, TransientFailure
from shared.services import Domain
from shared.steps import run_step
from shared.store import Migration, Store, Tx, migrations
from shared.telemetry import SAGA_PHASE, SAGA_STEP

VARIANT = "choreography"

FENCE_MIGRATIONS: tuple[Migration, ...] = migrations(
    "fences",
    """
    CREATE TABLE fences (
        saga_id TEXT PRIMARY KEY,
        reason TEXT,
        handed_back INTEGER NOT NULL DEFAULT 0,
        at DOUBLE PRECISION NOT NULL
    )
    """,
)
"""A participant's own tombstone per saga: after a cancel or a compensation, forward is shut."""

Reaction = Callable[["Participant", Event, int], Awaitable[None]]
Extra = Callable[[Tx, StepResult], None]


class Fenced(Exception):
    """The saga was cancelled here before this forward step committed: roll it back."""


class ActedMeanwhile(Exception):
    """A cancel meant to tombstone a step in flight found it done: undo nothing yet."""


@dataclass
class Participant:
    """One service's participant: its store, its reaction table, the relay to wake."""

    service: str
    domain: Domain
    reactions: Mapping[str, Reaction]
    routing: Routing = field(default_factory=Routing)
    hand_over: Callable[[list[Outgoing | None]], None] = lambda rows: None
    """Gives committed outbox rows to the relay (the host's, whatever life it is in)."""
    fenced_sagas: set[str] = field(default_factory=set)
    cancelling: dict[str, asyncio.Event] = field(default_factory=dict)
    """Cancels being handled: a forward trigger of the same saga waits for them."""

    @property
    def store(self) -> Store:
        return self.domain.services[self.service].store

    @property
    def consumer(self) -> str:
        return str(self.service)

    async def prepare(self) -> None:
        """Load the participant's fences (its tables come with the store's migrations)."""
        rows = await self.store.query("SELECT saga_id FROM fences")
        self.fenced_sagas = {row["saga_id"] for row in rows}

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler: decode, dedupe through the inbox, react; raises Retry or Poison."""
        event = decode(delivery, self.routing)
        reaction = self.reactions.get(event.kind)
        if reaction is None:
            raise Poison(f"{self.service} has no reaction to {event.kind}")
        if event.kind == CANCEL_REQUESTED:
            with self._cancelling(event.saga_id):
                return await self._react(reaction, event, delivery)
        await self._react(reaction, event, delivery)

    async def _react(self, reaction: Reaction, event: Event, delivery: Delivery) -> None:
        redelivered = delivery.num_delivered > 1
        if redelivered and await inbox.seen(self.store, self.consumer, event.event_id):
            return  # its effect already committed: ack and move on
        # A first delivery skips the read: a copy published twice still changes nothing, as
        # the step, the inbox row and the outbox rows are all idempotent in the transaction.
        await reaction(self, event, delivery.num_delivered)

    @contextlib.contextmanager
    def _cancelling(self, saga_id: str) -> Iterator[None]:
        done = self.cancelling.setdefault(saga_id, asyncio.Event())
        try:
            yield
        finally:
            done.set()
            if self.cancelling.get(saga_id) is done:
                del self.cancelling[saga_id]

    async def cancel_handled(self, saga_id: str) -> None:
        """Let a cancel that arrived with (or after) a forward trigger go first."""
        pending = self.cancelling.get(saga_id)
        if pending is not None:
            await pending.wait()

    async def attempt(self, step: str, event: Event, attempt: int, within: Writer) -> StepResult:
        """One attempt of a step through the shared runner, bounded by the attempt timeout."""
        request = StepRequest(saga_id=event.saga_id, order=event.order, attempt=attempt)
        try:
            async with asyncio.timeout(event.policy.attempt_timeout_s):
                result = await run_step(
                    self.domain, step, request, variant=VARIANT, faults=event.faults, within=within
                )
        except (BusinessFailure, TransientFailure, TimeoutError):
            if within.called:  # raised after the commit: the events are durable, send them
                self.committed(event.saga_id, within.rows, fenced=within.fence)
            raise
        self.committed(event.saga_id, within.rows, fenced=within.fence)
        return result

    def committed(self, saga_id: str, rows: list[Outgoing | None], *, fenced: bool) -> None:
        """After the commit only: remember a fence put up, give the events to the relay."""
        if fenced:
            self.fenced_sagas.add(saga_id)
        self.hand_over(rows)

    async def commit(
        self,
        trigger: Event,
        outgoing: Iterable[Event] = (),
        *,
        fence: bool = False,
        handed_back: bool = False,
        check_fence: bool = False,
    ) -> None:
        """A transaction of the participant's own: inbox row, events out, maybe a fence."""
        events = list(outgoing)

        def work(tx: Tx) -> list[Outgoing | None]:
            return self.record(
                tx, trigger, events, fence=fence, handed_back=handed_back, check_fence=check_fence
            )

        rows = await self.store.run(work, key=trigger.saga_id)
        self.committed(trigger.saga_id, rows, fenced=fence or handed_back)

    def record(
        self,
        tx: Tx,
        trigger: Event,
        outgoing: Iterable[Event],
        *,
        fence: bool = False,
        handed_back: bool = False,
        check_fence: bool = False,
    ) -> list[Outgoing | None]:
        """Inbox row, outbox rows and fence in the caller's transaction (a plain function: it
        runs inside ``store.run``; the caller remembers the fence once the commit is done)."""
        if check_fence:
            record_unless_fenced(tx, self.consumer, trigger)
        else:
            inbox.record(tx, self.consumer, trigger.event_id, trigger.subject)
        rows = [outbox.add(tx, event) for event in outgoing]
        if fence or handed_back:
            write_fence(tx, trigger, handed_back)
        return rows

    async def forward_status(self, saga_id: str, step: str) -> StepStatus | None:
        """What the service's own step log says of its forward step for this saga."""
        rows = await self.store.query(
            "SELECT status FROM step_log WHERE saga_id = ? AND step = ?", (saga_id, step)
        )
        return StepStatus(rows[0]["status"]) if rows else None

    async def handed_back(self, saga_id: str) -> bool:
        rows = await self.store.query(
            "SELECT handed_back FROM fences WHERE saga_id = ?", (saga_id,)
        )
        return bool(rows and rows[0]["handed_back"])


@dataclass
class Writer:
    """The ``within`` hook: inbox, events and fences committed with the step itself."""

    participant: Participant
    trigger: Event
    outgoing: Callable[[StepResult], list[Event]]
    check_fence: bool = False
    fence: bool = False
    guard: bool = False
    extra: Extra | None = None
    called: bool = False
    rows: list[Outgoing | None] = field(default_factory=list)

    def __call__(self, tx: Tx, result: StepResult) -> None:
        if self.guard and result.status is StepStatus.DONE and not result.replayed:
            raise ActedMeanwhile()
        self.rows = self.participant.record(
            tx,
            self.trigger,
            self.outgoing(result),
            fence=self.fence,
            handed_back=self.fence,
            check_fence=self.check_fence and result.status is not StepStatus.REJECTED,
        )
        if self.extra is not None:
            self.extra(tx, result)
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


def is_fenced(tx: Tx, saga_id: str) -> bool:
    return tx.fetchone("SELECT 1 AS one FROM fences WHERE saga_id = ?", (saga_id,)) is not None


def record_unless_fenced(tx: Tx, consumer: str, trigger: Event) -> None:
    """The inbox row, in one statement with the fence check; raises Fenced to roll back."""
    inserted = tx.execute(
        "INSERT INTO inbox (consumer, event_id, subject, at)"
        " SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION)"
        " WHERE NOT EXISTS (SELECT 1 FROM fences WHERE saga_id = ?) ON CONFLICT DO NOTHING",
        (consumer, trigger.event_id, trigger.subject, time.time(), trigger.saga_id),
    )
    if not inserted and is_fenced(tx, trigger.saga_id):
        raise Fenced()


def write_fence(tx: Tx, trigger: Event, handed_back: bool) -> None:
    """Put up the saga's fence here; once handed back, it stays handed back."""
    larger = tx.dialect.greatest("fences.handed_back", "excluded.handed_back")
    tx.execute(
        "INSERT INTO fences (saga_id, reason, handed_back, at) VALUES (?, ?, ?, ?)"
        f" ON CONFLICT (saga_id) DO UPDATE SET handed_back = {larger}",
        (
            trigger.saga_id,
            trigger.reason.value if trigger.reason else None,
            int(handed_back),
            time.time(),
        ),
    )


def annotate(p: Participant, step: str) -> None:
    """Name the step on the consumer's process span (the canonical saga.* attributes)."""
    phase = p.routing.saga.phase_of(step)
    trace.get_current_span().set_attributes({SAGA_STEP: step, SAGA_PHASE: phase.value})


def forward_events(
    routing: Routing, trigger: Event, step: str, result: StepResult, attempt: int
) -> list[Event]:
    """Done: pass the saga on with the step added to the trail; failed: start compensating."""
    if result.status is StepStatus.DONE:
        return [
            trigger.follow(
                routing.done(step),
                trail=(*trigger.trail, step),
                step=step,
                status=StepStatus.DONE,
                attempts=attempt,
            )
        ]
    if result.status is StepStatus.FAILED:
        return [failed_event(routing, trigger, step, result.reason, result.message, attempt)]
    return []  # rejected by a tombstone: the compensation already passed the chain on


def failed_event(
    routing: Routing, trigger: Event, step: str, reason: object, message: str, attempt: int
) -> Event:
    return trigger.follow(
        routing.failed(step),
        step=step,
        status=StepStatus.FAILED,
        attempts=attempt,
        reason=reason,
        message=message,
    )


async def forward(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Run a forward step unless the saga is fenced here; a business failure emits ``failed``."""
    annotate(p, step)
    await p.cancel_handled(event.saga_id)
    if event.saga_id in p.fenced_sagas:
        return await refuse(p, step, event, attempt)
    writer = Writer(
        p, event, lambda r: forward_events(p.routing, event, step, r, attempt), check_fence=True
    )
    try:
        await p.attempt(step, event, attempt, writer)
    except Fenced:
        await refuse(p, step, event, attempt)
    except StepRejected:
        if not writer.called:
            await p.commit(event)
    except BusinessFailure as failure:
        if not writer.called:  # an injected refusal never reaches the service's transaction
            await _injected_failure(p, step, event, attempt, failure)
    except (TransientFailure, TimeoutError) as error:
        raise Retry(event.policy.backoff(attempt), str(error) or "attempt timed out") from None


async def skip(p: Participant, step: str, event: Event, attempt: int) -> None:
    """A step that does not apply passes the saga straight on (``skipped``), never run."""
    annotate(p, step)
    await p.cancel_handled(event.saga_id)
    if event.saga_id in p.fenced_sagas:
        return await refuse(p, step, event, attempt)
    skipped = event.follow(p.routing.skipped(step), step=step, status=StepStatus.SKIPPED)
    try:
        await p.commit(event, [skipped], check_fence=True)
    except Fenced:
        await refuse(p, step, event, attempt)


async def _injected_failure(
    p: Participant, step: str, event: Event, attempt: int, failure: BusinessFailure
) -> None:
    failed = failed_event(p.routing, event, step, failure.reason, failure.message, attempt)
    try:
        await p.commit(event, [failed], check_fence=True)
    except Fenced:
        await refuse(p, step, event, attempt)


async def refuse(p: Participant, step: str, event: Event, attempt: int) -> None:
    """A trigger after the fence: hand the chain back (once), never run the step."""
    if await p.handed_back(event.saga_id) or await p.forward_status(event.saga_id, step):
        # Handed back already, or a copy of a trigger this service already acted on: the
        # chain reaches it through the service after it, not through a refusal.
        return await p.commit(event)
    refused = event.follow(
        p.routing.refused(step), step=step, status=StepStatus.REJECTED, attempts=attempt
    )
    await p.commit(event, [refused], handed_back=True)


async def compensate(
    p: Participant, step: str, event: Event, attempt: int, *, guard: bool = False
) -> bool:
    """Run the step's compensation; False when ``guard`` found the step acted meanwhile."""
    compensation = p.routing.saga.compensation_of(step)
    assert compensation is not None
    annotate(p, compensation)

    def outgoing(result: StepResult) -> list[Event]:
        return [
            event.follow(
                p.routing.compensated(step),
                step=compensation,
                status=result.status,
                attempts=attempt,
                reason=event.reason,
            )
        ]

    writer = Writer(p, event, outgoing, fence=True, guard=guard)
    try:
        await p.attempt(compensation, event, attempt, writer)
    except ActedMeanwhile:
        return False
    except BusinessFailure as failure:
        await compensation_failed(p, compensation, event, attempt, failure.message)
    except (TransientFailure, TimeoutError) as error:
        message = str(error) or "timed out"
        if attempt < event.policy.compensation_attempts:
            raise Retry(event.policy.backoff(attempt), message) from None
        if not writer.called:  # committed before the error surfaced: it did not fail
            await compensation_failed(p, compensation, event, attempt, message)
    return True


async def compensation_failed(
    p: Participant, compensation: str, event: Event, attempt: int, message: str
) -> None:
    """The budget is spent or the compensation refused: say so and let the chain go on."""
    failed = event.follow(
        p.routing.compensation_failed(compensation),
        step=compensation,
        status=StepStatus.FAILED,
        attempts=attempt,
        reason=event.reason,
        message=message,
    )
    await p.commit(event, [failed], handed_back=True)


async def own_failure(p: Participant, step: str, event: Event, attempt: int) -> None:
    """This service's step failed: its own compensation (a recorded no-op) starts the chain."""
    await compensate(p, step, event, attempt)


async def handback(p: Participant, step: str, event: Event, attempt: int) -> None:
    """A later service is done compensating; continue only if this service is next to undo."""
    meaning = p.routing.meaning(event.kind)
    if meaning is None or meaning.step is None:
        return
    if p.routing.previous_actor(event.trail, meaning.step) != step:
        return
    await compensate(p, step, event, attempt)


async def cancel(p: Participant, step: str, event: Event, attempt: int) -> None:
    """Deadline or customer cancel before the pivot (see the module docstring)."""
    compensation = p.routing.saga.compensation_of(step)
    assert compensation is not None
    annotate(p, compensation)
    status = await p.forward_status(event.saga_id, step)
    if status is StepStatus.DONE:
        return await _wait_for_chain(p, step, event)
    in_flight = step in event.trail or status is StepStatus.FAILED
    if in_flight and not await compensate(p, step, event, attempt, guard=True):
        return await _wait_for_chain(p, step, event)
    if not in_flight:
        await p.commit(event, fence=True)


async def _wait_for_chain(p: Participant, step: str, event: Event) -> None:
    """The step acted: a later service hands the chain back, or the pivot passed already."""
    if step == p.routing.saga.pivot:
        return  # past the pivot the saga only goes forward: the cancel is ignored
    await p.commit(event, fence=True)


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
        await own_failure(p, self.step, event, attempt)

    async def handback(self, p: Participant, event: Event, attempt: int) -> None:
        await handback(p, self.step, event, attempt)

    async def cancel(self, p: Participant, event: Event, attempt: int) -> None:
        await cancel(p, self.step, event, attempt)
