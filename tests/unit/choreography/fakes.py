"""In-memory fakes for unit tests: a store without files or threads, a bus without a broker.

The stores are `shared.store.memory`'s (in-memory SQLite on the event loop, each ``run`` one
transaction, atomic on the loop; it passes the store contract suite). `FakeBus` stands for NATS and
the relays: what a participant or the tracker hands over is queued, and `deliver` hands each
message to every participant whose table reacts to its kind and to the tracker — in the order
the test chooses, so interleavings are exact and nothing waits on time.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from choreography import outbox
from choreography.bus import Delivery, Outgoing, Retry
from choreography.events import Event, Routing, placed, saga_key
from choreography.participants import Participant, kinds_for, reactions_for
from choreography.schema import migrations_for
from choreography.tracker import Tracker
from harness.compare.faulty import injected
from shared.contracts import OrderRequest, Reason, SagaPolicy
from shared.definition import SagaDefinition
from shared.faults import FaultPlan, MemoryPlans
from shared.services import Domain
from shared.store import Tx
from shared.store.memory import memory_stores


@dataclass
class Message:
    outgoing: Outgoing
    delivered: int = 1

    @property
    def kind(self) -> str:
        return self.outgoing.subject.split(".", 1)[1].rsplit(".", 1)[0]


@dataclass
class FakeBus:
    """The broker and every relay at once: a queue of published messages, delivered on demand."""

    domain: Domain
    routing: Routing
    plans: MemoryPlans = field(init=False)
    """Where a test installs a saga's faults (the participants' injector reads them)."""
    tracker: Tracker = field(init=False)
    participants: dict[str, Participant] = field(default_factory=dict)
    queue: deque[Message] = field(default_factory=deque)
    published: list[str] = field(default_factory=list)
    """Every kind published so far, in order (duplicates dropped, like the broker's dedup)."""
    _ids: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.tracker = Tracker(self.domain.orders, routing=self.routing, hand_over=self.hand_over)
        self.plans, hooks = injected("choreography")
        for service in self.routing.saga.services:
            self.participants[service] = Participant(
                service,
                self.domain,
                reactions_for(service, self.routing),
                routing=self.routing,
                hand_over=self.hand_over,
                middleware=hooks.step,
            )

    def hand_over(self, rows: list[Outgoing | None]) -> None:
        for row in rows:
            if row is not None and row.msg_id not in self._ids:
                self._ids.add(row.msg_id)
                self.queue.append(Message(row))
                self.published.append(Message(row).kind)

    async def start(
        self, saga_id: str, order: OrderRequest, policy: SagaPolicy, faults: FaultPlan
    ) -> None:
        """What the runtime's start does (the order, the tracker's view, ``order.placed``),
        with the saga's faults installed first, as the harness does."""
        self.plans.install(saga_id, faults.resolve(self.routing.saga))
        ref = self.routing.definition.ref
        event = placed(saga_id, order, policy, time.time(), ref)
        rows: list[Outgoing | None] = []

        def hook(tx: Tx) -> None:
            self.tracker.record_start(tx, event, None)
            rows.append(outbox.add(tx, event))

        await self.domain.orders.place(saga_id, order, within=hook)
        self.hand_over(rows)

    async def cancel(self, saga_id: str, reason: Reason) -> None:
        await self.tracker.request_cancel(saga_id, reason)

    def take(self, kind: str) -> Message:
        """Remove the first queued message of a kind (to deliver it out of order)."""
        found = next(m for m in self.queue if m.kind == kind)
        self.queue.remove(found)
        return found

    async def deliver(self, message: Message) -> None:
        """Hand one message to its services and the tracker; a Retry queues it again."""
        delivery = Delivery(
            subject=message.outgoing.subject,
            data=message.outgoing.body,
            headers=dict(message.outgoing.headers),
            num_delivered=message.delivered,
            stream_seq=len(self.published),
        )
        for service, participant in self.participants.items():
            if message.kind in kinds_for(service, self.routing):
                try:
                    await participant.handle(delivery)
                except Retry:
                    self.queue.append(Message(message.outgoing, message.delivered + 1))
        await self.tracker.project([delivery])

    async def run(self, until: Callable[[], bool] = lambda: False, limit: int = 1_000) -> None:
        """Deliver queued messages in order until none is left (or ``until`` holds)."""
        for _ in range(limit):
            if not self.queue or until():
                return
            await self.deliver(self.queue.popleft())
        raise AssertionError("the saga never went quiet")

    def saga_of(self, message: Message) -> str:
        return saga_key(message.outgoing.subject)


async def fake_world(definition: SagaDefinition) -> FakeBus:
    """A domain on memory stores with the choreography's tables, and the bus over it."""
    migrations = migrations_for(definition.services)
    domain = Domain(memory_stores(), definition, extra_migrations=migrations)
    await domain.open()
    return FakeBus(domain, Routing(definition))


def decoded(message: Message) -> Event:
    return Event.model_validate_json(message.outgoing.body)
