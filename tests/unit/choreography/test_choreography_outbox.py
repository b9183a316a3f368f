"""Outbox rows commit or roll back with their transaction; relays claim and send each one on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from choreography import inbox, outbox
from choreography.bus import Outgoing
from choreography.events import Event, placed
from choreography.outbox import Relay
from choreography.schema import PARTICIPANT
from shared.contracts import LineItem, OrderRequest, SagaPolicy, ShippingAddress
from shared.definitions import ORDERS_V1
from shared.store import Store, StoreFactory, Tx, sqlite_stores
from shared.telemetry import current_tracing

ORDER = OrderRequest(
    order_id="o-1",
    customer_id="alice",
    items=[LineItem(product_id="widget", quantity=1, unit_price_cents=100)],
    payment_method="card-4242",
    shipping_address=ShippingAddress(
        name="A", street="1 Main St", city="X", postal_code="1", country="US"
    ),
)
START = placed("s1", ORDER, SagaPolicy(), 1.0, ORDERS_V1.ref)


class Broker:
    """A fake publisher: records what it was given, or fails while ``down``."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False
        self.refused = 0

    async def publish(self, batch: Sequence[Outgoing]) -> None:
        if self.down:
            self.refused += 1
            raise ConnectionError("broker unreachable")
        self.sent += [row.msg_id for row in batch]


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    opened = store_factory("service", PARTICIPANT)
    await opened.open()
    yield opened
    await opened.close()


async def add(store: Store, *events: Event) -> list[Outgoing | None]:
    return await store.run(lambda tx: [outbox.add(tx, event) for event in events])


async def _until(condition: Callable[[], object], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_outbox_row_rolls_back_with_its_transaction(store: Store) -> None:
    def work(tx: Tx) -> None:
        outbox.add(tx, START)
        raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await store.run(work)

    assert await outbox.unsent(store) == []


async def test_same_event_is_written_once_and_keeps_its_trace_headers(
    store: Store,
) -> None:
    first, second = await add(store, START, START)

    assert first is not None and second is None
    [row] = await outbox.unsent(store)
    assert (row.msg_id, row.subject) == ("s1:order.placed", "saga.order.placed.s1")
    assert row.headers["Saga-Id"] == "s1"
    assert row.headers == first.headers


async def test_an_event_row_carries_the_context_of_the_step_that_wrote_it_and_makes_no_span(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    async with one_sqlite_store(tmp_path) as store:
        with trace.get_tracer("t").start_as_current_span("charge_payment") as step:
            [row] = await add(store, START.follow("payment.charged"))

    assert row is not None and row.headers["Saga-Id"] == "s1"
    # The relay's send span is the message's one producer span, a child of this context.
    carried = trace.get_current_span(propagate.extract(row.headers)).get_span_context()
    assert carried.span_id == step.get_span_context().span_id
    assert carried.trace_flags.sampled
    assert [s.name for s in span_exporter.get_finished_spans()] == ["charge_payment"]


async def test_an_event_written_with_tracing_off_carries_its_unrecorded_trace(
    tmp_path: Path, span_exporter: InMemorySpanExporter
) -> None:
    tracing = current_tracing()
    assert tracing is not None
    tracing.set_enabled(False)
    try:
        async with one_sqlite_store(tmp_path) as store:
            with trace.get_tracer("t").start_as_current_span("charge_payment") as step:
                [row] = await add(store, START.follow("payment.charged"))
    finally:
        tracing.set_enabled(True)

    assert row is not None and row.headers["Saga-Id"] == "s1"
    carried = trace.get_current_span(propagate.extract(row.headers)).get_span_context()
    assert carried.trace_id == step.get_span_context().trace_id
    assert not carried.trace_flags.sampled
    assert span_exporter.get_finished_spans() == ()


@contextlib.asynccontextmanager
async def one_sqlite_store(folder: Path) -> AsyncIterator[Store]:
    """A participant's store on SQLite (what a span is made of does not depend on the backend)."""
    opened = sqlite_stores(folder)("service", PARTICIPANT)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def test_relay_publishes_rows_handed_over_after_commit_and_marks_them_sent(
    store: Store,
) -> None:
    broker = Broker()
    relay = Relay(store, broker.publish, poll_s=60)
    relay.start()
    try:
        relay.hand_over(await add(store, START.follow("inventory.reserved")))
        await _until(lambda: broker.sent == ["s1:inventory.reserved"])
        await _until(lambda: relay.published == 1)
    finally:
        await relay.stop()

    assert await outbox.unsent(store) == []


async def test_relay_finds_rows_nobody_handed_over_and_retries_while_the_broker_is_down(
    store: Store,
) -> None:
    await add(store, START)
    broker = Broker()
    broker.down = True
    relay = Relay(store, broker.publish, poll_s=0.02, retry_s=0.02)
    relay.start()
    try:
        await _until(lambda: broker.refused >= 2)  # tried, and tried again: the row stays
        assert [row.msg_id for row in await outbox.unsent(store)] == ["s1:order.placed"]
        broker.down = False
        await _until(lambda: relay.published == 1)
    finally:
        await relay.stop()

    assert broker.sent == ["s1:order.placed"]
    assert await outbox.unsent(store) == []


async def test_a_hand_over_arriving_while_its_row_is_published_from_a_poll_is_not_sent_again(
    store: Store,
) -> None:
    """The poll can claim a row between its commit and its hand-over; the hand-over may then
    arrive while that batch is being published (seen under load: two `send` spans, one message).
    """
    rows = await add(store, START)  # committed; its hand-over is late
    sent: list[str] = []
    relay: Relay

    async def publish(batch: Sequence[Outgoing]) -> None:
        sent.extend(row.msg_id for row in batch)
        relay.hand_over(rows)  # the after-commit hand-over lands mid-publish

    relay = Relay(store, publish, poll_s=60)
    assert await relay.relay_once() == 1  # the poll's claim: nothing was handed over yet
    assert await relay.relay_once() == 0  # the late hand-over: already sent, nothing to do
    assert sent == ["s1:order.placed"]
    assert await outbox.unsent(store) == []


async def test_a_row_handed_to_one_relay_is_not_published_again_by_another_relay_s_poll(
    store: Store,
) -> None:
    """Two relays over one store (the orders host's and the tracker's in one process, or two
    processes): the other's poll may land while the handed-over row is being published (seen
    under load: a second `send` span of one message)."""
    rows = await add(store, START)
    sent: list[str] = []

    async def record(batch: Sequence[Outgoing]) -> None:
        sent.extend(row.msg_id for row in batch)

    other = Relay(store, record, poll_s=60, name="relay tracker")

    async def publish_while_the_other_polls(batch: Sequence[Outgoing]) -> None:
        await record(batch)
        assert await other.relay_once() == 0  # its poll finds the row taken

    relay = Relay(store, publish_while_the_other_polls, poll_s=60, name="relay orders")
    relay.hand_over(rows)
    assert await relay.relay_once() == 1
    assert sent == ["s1:order.placed"]
    assert await outbox.unsent(store) == []


class Defer:
    """A publish middleware that leaves one saga's messages unpublished while ``held``."""

    def __init__(self, saga_id: str) -> None:
        self.saga_id = saga_id
        self.held = True
        self.deferred = 0

    async def __call__(
        self,
        source: str,
        batch: Sequence[Outgoing],
        publish: Callable[[Sequence[Outgoing]], Awaitable[None]],
    ) -> Sequence[Outgoing]:
        assert source == "service"  # the relay names the store it publishes
        now = [m for m in batch if not (self.held and m.saga_id == self.saga_id)]
        self.deferred += len(batch) - len(now)
        if now:
            await publish(now)
        return now


async def test_messages_a_publish_middleware_leaves_stay_unsent_for_a_later_poll(
    store: Store,
) -> None:
    second = ORDER.model_copy(update={"order_id": "o-2"})
    other = placed("s2", second, SagaPolicy(), 1.0, ORDERS_V1.ref)
    broker = Broker()
    defer = Defer("s1")
    relay = Relay(store, broker.publish, middleware=[defer], poll_s=0.02)
    relay.start()
    try:
        relay.hand_over(await add(store, START, other))
        await _until(lambda: broker.sent == ["s2:order.placed"] and defer.deferred >= 2)
        assert [row.msg_id for row in await outbox.unsent(store)] == ["s1:order.placed"]
        defer.held = False
        await _until(lambda: relay.published == 2)
    finally:
        await relay.stop()

    assert broker.sent == ["s2:order.placed", "s1:order.placed"]
    assert await outbox.unsent(store) == []


async def test_inbox_remembers_a_consumed_event_once(store: Store) -> None:
    def work(tx: Tx) -> list[bool]:
        return [inbox.record(tx, "payment", "s1:inventory.reserved", "saga.x") for _ in range(2)]

    assert await store.run(work) == [True, False]

    assert await inbox.seen(store, "payment", "s1:inventory.reserved")
    assert not await inbox.seen(store, "points", "s1:inventory.reserved")
    assert await inbox.count(store, "payment") == 1


def claim(owner: str, now: float, limit: int = 10) -> Callable[[Tx], list[str]]:
    def work(tx: Tx) -> list[str]:
        return [row.msg_id for row in outbox.claim(tx, owner, limit, now, lease_s=5)]

    return work


async def test_two_relays_claim_disjoint_rows_until_a_lease_runs_out(store: Store) -> None:
    await add(store, *(START.follow(kind) for kind in KINDS))
    ids = [START.follow(kind).event_id for kind in KINDS]

    first = await store.run(claim("relay-a", now=100.0, limit=2))
    second = await store.run(claim("relay-b", now=100.0))
    nothing_left = await store.run(claim("relay-c", now=104.0))
    taken_over = await store.run(claim("relay-c", now=106.0))

    assert (first, second, nothing_left) == (ids[:2], ids[2:], [])
    assert taken_over == ids  # the first two relays died with their leases: nothing is stranded


async def test_a_relay_takes_back_its_own_claim_at_once_after_a_failed_publish(
    store: Store,
) -> None:
    await add(store, START)

    assert await store.run(claim("relay-a", now=100.0)) == [START.event_id]
    assert await store.run(claim("relay-b", now=101.0)) == []
    assert await store.run(claim("relay-a", now=101.0)) == [START.event_id]


async def test_relay_publishes_an_older_row_it_could_not_claim_before_newer_ones_were_sent(
    store: Store,
) -> None:
    # Ids say nothing about commit order (or lease expiry): no watermark may skip the old row.
    older, newer = START, START.follow("inventory.reserved")
    await add(store, older)
    assert await store.run(claim("dead-relay", now=time.time())) == [older.event_id]
    broker = Broker()
    relay = Relay(store, broker.publish, poll_s=60)
    relay.start()
    try:
        await add(store, newer)
        relay.wake()
        await _until(lambda: broker.sent == [newer.event_id])
        await store.run(
            lambda tx: tx.execute(
                "UPDATE outbox SET claimed_until = 0 WHERE event_id = ?", (older.event_id,)
            )
        )  # the dead relay's lease runs out
        relay.wake()
        await _until(lambda: broker.sent == [newer.event_id, older.event_id])
    finally:
        await relay.stop()

    assert await outbox.unsent(store) == []


async def test_sent_rows_are_pruned_after_the_keep_window_and_unsent_ones_never(
    store: Store,
) -> None:
    await add(store, START, START.follow("inventory.reserved"))
    await store.run(lambda tx: outbox.mark_sent(tx, [START.event_id], now=100.0))

    assert await store.run(lambda tx: outbox.prune(tx, now=100.0 + outbox.KEEP_SENT_S / 2)) == 0
    assert await store.run(lambda tx: outbox.prune(tx, now=101.0 + outbox.KEEP_SENT_S)) == 1
    assert [row.msg_id for row in await outbox.unsent(store)] == ["s1:inventory.reserved"]


KINDS = ("inventory.reserved", "payment.charged", "points.deducted")
