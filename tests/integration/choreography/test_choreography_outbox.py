"""The transactional outbox against a real nats-server: nothing lost, nothing doubled.

A process killed between a step's commit and the publish is tested with real processes
(test_choreography_processes.py).
"""

from __future__ import annotations

import pytest

from choreography import outbox
from choreography.events import placed
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import ServiceName
from shared.definitions import ORDERS_V1
from tests.integration.choreography.choreography_support import (
    QUICK,
    eventually,
    make_order,
    saga_id,
    stream_count,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_relay_publishes_rows_a_dead_process_left_behind_when_it_starts(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    shipping = runtime.runtime.host(ServiceName.SHIPPING)
    await shipping.stop()
    sid = saga_id("left")
    order = make_order(sid, points=0)
    # A row committed by an earlier run of the process, never handed to any relay.
    event = placed(sid, order, QUICK, 0.0, ORDERS_V1.ref).follow("shipping.cancelled")
    await shipping.store.run(lambda tx: outbox.add(tx, event))

    await shipping.start()

    async def published_and_marked() -> bool:
        # The row is marked sent only after the broker's ack: wait for both, in that order.
        published = await _published(runtime, event.subject)
        return published and await outbox.unsent(shipping.store) == []

    await eventually(published_and_marked)


async def _published(runtime: Faulty[ChoreographyRuntime], value: str) -> bool:
    return await stream_count(runtime, value) == 1
