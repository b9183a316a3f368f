"""The bare-NATS floor the benchmark divides by: the same four hops, no stores, no spans."""

from __future__ import annotations

import pytest

from choreography.broker import NatsBroker
from choreography.bus import Bus
from choreography.floor import FLOOR_STREAM, run_floor

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_floor_runs_every_chain_through_four_hops_and_cleans_up(broker: NatsBroker) -> None:
    bus = await Bus.connect([broker.url], "floor-test")
    try:
        latencies = await run_floor(bus.nc, 40, 8)
        consumers = await bus.js.consumers_info(FLOOR_STREAM)
        info = await bus.js.stream_info(FLOOR_STREAM)
    finally:
        await bus.close()

    assert len(latencies) == 40
    assert all(0 < latency < 5 for latency in latencies)
    assert consumers == []
    assert info.state.messages == 40 * 4  # e0..e3: one event per hop
