"""Outbox rows commit or roll back with their transaction; the relay sends each one on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from choreography import inbox, outbox
from choreography.bus import Liveness, Outgoing
from choreography.events import Kind, placed
from choreography.outbox import Relay
from shared.contracts import LineItem, OrderRequest, SagaPolicy, ShippingAddress
from shared.faults import FaultPlan
from shared.store import SqliteStore

ORDER = OrderRequest(
    order_id="o-1",
    customer_id="alice",
    items=[LineItem(product_id="widget", quantity=1, unit_price_cents=100)],
    payment_method="card-4242",
    shipping_address=ShippingAddress(
        name="A", street="1 Main St", city="X", postal_code="1", country="US"
    ),
)
START = placed("s1", ORDER, FaultPlan(), SagaPolicy(), started_at=1.0)


class Broker:
    """A fake publisher: records what it was given, or fails while ``down``."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.down = False

    async def publish(self, batch: Sequence[Outgoing]) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent += [row.msg_id for row in batch]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "service.db", [])
    await opened.open()
    await outbox.ensure_schema(opened)
    await inbox.ensure_schema(opened)
    yield opened
    await opened.close()


async def _until(condition: object, timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.01)


async def test_outbox_row_rolls_back_with_its_transaction(store: SqliteStore) -> None:
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await outbox.add(tx, START)
            raise RuntimeError("the state change failed")

    assert await outbox.unsent(store) == []


async def test_same_event_is_written_once_and_keeps_its_trace_headers(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        first = await outbox.add(tx, START)
        second = await outbox.add(tx, START)

    assert first is not None and second is None
    [row] = await outbox.unsent(store)
    assert (row.msg_id, row.subject) == ("s1:order.placed", "saga.order.placed.s1")
    assert row.headers["Saga-Id"] == "s1"
    assert row.headers == first.headers


async def test_relay_publishes_rows_handed_over_after_commit_and_marks_them_sent(
    store: SqliteStore,
) -> None:
    broker = Broker()
    relay = Relay(store, broker.publish, poll_s=60)
    relay.start()
    try:
        async with store.transaction() as tx:
            rows = [await outbox.add(tx, START.follow(kind)) for kind in (Kind.INVENTORY_RESERVED,)]
        relay.hand_over(rows)
        await _until(lambda: broker.sent == ["s1:inventory.reserved"])
        await _until(lambda: relay.published == 1)
    finally:
        await relay.stop()

    assert await outbox.unsent(store) == []


async def test_relay_finds_rows_nobody_handed_over_and_retries_while_the_broker_is_down(
    store: SqliteStore,
) -> None:
    async with store.transaction() as tx:
        await outbox.add(tx, START)
    broker = Broker()
    broker.down = True
    relay = Relay(store, broker.publish, poll_s=0.02, retry_s=0.02)
    relay.start()
    try:
        await asyncio.sleep(0.1)
        assert [row.msg_id for row in await outbox.unsent(store)] == ["s1:order.placed"]
        broker.down = False
        await _until(lambda: relay.published == 1)
    finally:
        await relay.stop()

    assert broker.sent == ["s1:order.placed"]
    assert await outbox.unsent(store) == []


async def test_dead_process_publishes_nothing(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        await outbox.add(tx, START)
    broker = Broker()
    relay = Relay(store, broker.publish, liveness=Liveness(alive=False), poll_s=0.02)
    relay.start()
    await asyncio.sleep(0.1)
    await relay.stop()

    assert broker.sent == []
    assert len(await outbox.unsent(store)) == 1


async def test_inbox_remembers_a_consumed_event_once(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        assert await inbox.record(tx, "payment", "s1:inventory.reserved", "saga.x")
        assert not await inbox.record(tx, "payment", "s1:inventory.reserved", "saga.x")

    assert await inbox.seen(store, "payment", "s1:inventory.reserved")
    assert not await inbox.seen(store, "points", "s1:inventory.reserved")
    assert await inbox.count(store, "payment") == 1
