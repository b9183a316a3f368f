"""The choreography's floors: a happy-path saga's hops through the bus, with no-op handlers.

What the choreography could cost at best on this machine, shaped like the work: a saga here
publishes six events (order placed, one per forward step) and does eleven consume-and-acks
(one per service hop, and the tracker's copy of every event). The floor runs exactly that:
one durable per service, each on its own connection, consumed by the same `LaneConsumer` the
services use and published with the same `Bus.publish`, plus a `BatchConsumer` standing in
for the tracker; the handlers do nothing but pass the event on.

Two floors, so a ratio says what it isolates:

- **bare**: the transport alone (no stores, spans off when the caller turns them off);
- **durable**: each hop also commits an inbox row and an outbox row in its own store of the
  chosen backend, and a `Relay` publishes the outbox after the commit and marks it sent --
  the choreography's durability mechanism, without any business rows.

A chain ends where the harness sees a real saga end: when the orders hop takes the shipment
event (a real saga's ``complete_order`` commits there and wakes the waiting harness).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from choreography import inbox, outbox
from choreography.broker import DUPLICATE_WINDOW_S
from choreography.bus import (
    SAGA_ID_HEADER,
    BatchConsumer,
    Bus,
    ConsumerSpec,
    Delivery,
    Handler,
    LaneConsumer,
    Outgoing,
)
from choreography.outbox import Relay
from shared.definitions import ORDERS_V1
from shared.store import Store, StoreFactory, Tx

log = logging.getLogger(__name__)

FLOOR_STREAM = "SAGA_FLOOR"
FLOOR_SUBJECTS = ("floor.>",)
HOPS: tuple[str, ...] = tuple(
    str(ORDERS_V1.spec.service_of(step)) for step in ORDERS_V1.spec.forward_steps
)
"""The services a happy-path saga passes through, in order (the last one completes it)."""
EVENTS = len(HOPS) + 1
"""Events a happy-path saga publishes: the order placed, then one per hop."""
CONSUMES = len(HOPS) + EVENTS
"""Consume-and-acks per saga: one per hop, and the tracker's copy of every event."""
FRONT = "front"
"""The store and connection of the front door (a real saga's order is placed there)."""
MIGRATIONS = (*inbox.MIGRATIONS, *outbox.MIGRATIONS)


def subject(run: str, index: int, saga: str) -> str:
    """Event ``index`` (0 = placed) of one floor saga."""
    return f"floor.{run}.e{index}.{saga}"


async def ensure_stream(js: JetStreamContext) -> None:
    """The floor's stream, configured like the saga stream (file storage, dedup window)."""
    try:
        await js.stream_info(FLOOR_STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=FLOOR_STREAM,
                description="the benchmark's floor chains",
                subjects=list(FLOOR_SUBJECTS),
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_S,
                max_age=600,
            )
        )


@dataclass
class _Hop:
    """One service's part: its connection, durable, and (durable floor) store and relay."""

    index: int
    service: str
    bus: Bus
    store: Store | None = None
    relay: Relay | None = None


class ChoreographyFloor:
    """The floor's hops running on a broker; ``once(i)`` runs one chain and times it.

    ``stores`` makes it the durable floor: one store per hop (and one for the front door),
    named ``floor_<service>``, from the same factory as the services' stores.
    """

    def __init__(self, servers: Sequence[str], stores: StoreFactory | None = None) -> None:
        self.servers = list(servers)
        self.stores = stores
        self.run = uuid.uuid4().hex[:8]
        self._finished: dict[str, asyncio.Future[float]] = {}
        self._hops: list[_Hop] = []
        self._front: _Hop | None = None
        self._stack = AsyncExitStack()
        self._durables: list[str] = []
        self._numbers = itertools.count()

    @property
    def durable(self) -> bool:
        return self.stores is not None

    async def __aenter__(self) -> ChoreographyFloor:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        self._front = await self._hop(0, FRONT)
        await ensure_stream(self._front.bus.js)
        self._stack.push_async_callback(self._delete_durables)
        for index, service in enumerate(HOPS, 1):
            hop = await self._hop(index, service)
            spec = self._lane_spec(hop)
            await self._consume(LaneConsumer(hop.bus, spec, handler=self._handler(hop)))
            self._hops.append(hop)
        tracker = await self._hop(EVENTS, "tracker")
        spec = self._tracker_spec()
        await self._consume(BatchConsumer(tracker.bus, spec, batch_handler=_ack_all))

    async def _hop(self, index: int, service: str) -> _Hop:
        bus = await Bus.connect(self.servers, f"floor-{service}")
        self._stack.push_async_callback(bus.close)
        hop = _Hop(index, service, bus)
        if self.stores is not None:
            hop.store = self.stores(f"floor_{service}", MIGRATIONS)
            await hop.store.open()
            self._stack.push_async_callback(hop.store.close)
            hop.relay = Relay(hop.store, bus.publish, name=f"floor relay {service}")
            hop.relay.start()
            self._stack.push_async_callback(hop.relay.stop)
        return hop

    def _lane_spec(self, hop: _Hop) -> ConsumerSpec:
        return ConsumerSpec(
            durable=f"floor-{self.run}-{hop.service}",
            service=hop.service,
            filter_subjects=(subject(self.run, hop.index - 1, "*"),),
            stream=FLOOR_STREAM,
        )

    def _tracker_spec(self) -> ConsumerSpec:
        return ConsumerSpec(
            durable=f"floor-{self.run}-tracker",
            service="tracker",
            filter_subjects=(f"floor.{self.run}.>",),
            ack_wait_s=5.0,
            batch=256,
            max_inflight=512,
            stream=FLOOR_STREAM,
        )

    async def _consume(self, consumer: LaneConsumer | BatchConsumer) -> None:
        self._durables.append(consumer.spec.durable)
        await consumer.start()
        self._stack.push_async_callback(consumer.stop)

    async def _delete_durables(self) -> None:
        assert self._front is not None
        for durable in self._durables:
            with contextlib.suppress(NatsError):
                await self._front.bus.js.delete_consumer(FLOOR_STREAM, durable)

    def _handler(self, hop: _Hop) -> Handler:
        last = hop.index == len(HOPS)

        async def handle(delivery: Delivery) -> None:
            saga = delivery.subject.rsplit(".", 1)[-1]
            if last:
                self._end(saga)
            row = self._next(hop.index, saga, delivery.data)
            await self._emit(hop, row, delivery)

        return handle

    def _next(self, index: int, saga: str, body: bytes) -> Outgoing:
        return Outgoing(
            subject=subject(self.run, index, saga),
            body=body,
            headers={SAGA_ID_HEADER: saga},
            msg_id=f"{self.run}.{index}.{saga}",
        )

    async def _emit(self, hop: _Hop, row: Outgoing, trigger: Delivery | None) -> None:
        """Bare: publish now. Durable: commit inbox + outbox rows, the relay publishes."""
        if hop.store is None or hop.relay is None:
            await hop.bus.publish([row])
            return
        saga = row.headers[SAGA_ID_HEADER]

        def work(tx: Tx) -> Outgoing | None:
            if trigger is not None:
                event_id = trigger.headers.get("Nats-Msg-Id", trigger.subject)
                inbox.record(tx, hop.service, event_id, trigger.subject)
            return outbox.put(tx, row)

        committed = await hop.store.run(work, key=saga)
        hop.relay.hand_over([committed])

    def _end(self, saga: str) -> None:
        done = self._finished.get(saga)
        if done is not None and not done.done():
            done.set_result(time.perf_counter())

    async def once(self, index: int) -> float:
        """Place one chain (published, or committed then relayed) and wait for its end (s).

        ``index`` is the load model's; chains are numbered by the floor, so a warm-up and a
        measured run never reuse an id.
        """
        assert self._front is not None
        saga = f"{self.run}-{next(self._numbers)}"  # unique: the broker dedupes by msg id
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._finished[saga] = done
        started = time.perf_counter()
        try:
            await self._emit(self._front, self._next(0, saga, b"{}"), None)
            return await done - started
        finally:
            del self._finished[saga]


async def _ack_all(deliveries: Sequence[Delivery]) -> Sequence[Delivery]:
    """The tracker's stand-in: takes every event, poisons none."""
    return ()


def _fatal(cause: BaseException) -> None:
    """A floor hop has no simulated deaths; anything fatal is a bug worth a log line."""
    log.error("floor consumer died: %r", cause)
