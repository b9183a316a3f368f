"""The choreography's floors: a happy-path saga's hops through the bus, no business work."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.errors import NotFoundError

from choreography.broker import NatsBroker
from choreography.bus import Bus
from harness.bench.floors.choreography import (
    CONSUMES,
    EVENTS,
    FLOOR_STREAM,
    HOPS,
    ChoreographyFloor,
)
from shared.store import StoreFactory

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def run_chains(floor: ChoreographyFloor, chains: int) -> list[float]:
    return list(await asyncio.gather(*(floor.once(i) for i in range(chains))))


async def test_the_floor_has_the_shape_of_a_happy_path_saga() -> None:
    assert HOPS == ("inventory", "payment", "points", "shipping", "orders")
    assert (EVENTS, CONSUMES) == (6, 11)


async def test_the_bare_floor_publishes_six_events_per_chain_and_leaves_no_durables(
    broker: NatsBroker,
) -> None:
    bus = await Bus.connect([broker.url], "floor-test")
    try:
        before = await _messages(bus)
        async with ChoreographyFloor([broker.url]) as floor:
            latencies = await run_chains(floor, 30)
            await run_chains(floor, 5)  # a second batch may reuse the load model's indexes
        after = await _messages(bus)
        consumers = await bus.js.consumers_info(FLOOR_STREAM)
    finally:
        await bus.close()

    assert len(latencies) == 30 and all(latency > 0 for latency in latencies)
    assert after - before == 35 * EVENTS
    assert consumers == []


async def test_the_durable_floor_commits_an_inbox_and_an_outbox_row_per_hop(
    broker: NatsBroker, store_factory: StoreFactory
) -> None:
    async with ChoreographyFloor([broker.url], store_factory) as floor:
        await run_chains(floor, 12)

    for service in HOPS:
        store = store_factory(f"floor_{service}", ())
        await store.open()
        try:
            inbox = await store.query("SELECT count(*) AS n FROM inbox")
            outbox = await store.query("SELECT count(*) AS n FROM outbox")
        finally:
            await store.close()
        assert (inbox[0]["n"], outbox[0]["n"]) == (12, 12), service
    front = store_factory("floor_front", ())
    await front.open()
    try:
        placed = await front.query("SELECT count(*) AS n FROM outbox")
    finally:
        await front.close()
    assert placed[0]["n"] == 12


async def _messages(bus: Bus) -> int:
    try:
        info = await bus.js.stream_info(FLOOR_STREAM)
    except NotFoundError:
        return 0
    return int(info.state.messages)
