"""The pull consumer on a real nats-server: an idle consumer is not slow, a lost durable is
asked for again and the consumer resumes once it is back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from choreography.broker import NatsBroker, ensure_streams
from choreography.bus import Bus, ConsumerSpec, Delivery, FetchPolicy, LaneConsumer, Outgoing
from tests.integration.choreography.choreography_support import eventually

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module")
async def bus(broker: NatsBroker) -> AsyncIterator[Bus]:
    connected = await Bus.connect([broker.url], "pull-test")
    await ensure_streams(connected.js)
    yield connected
    await connected.close()


def spec(fetch: FetchPolicy) -> ConsumerSpec:
    run = uuid.uuid4().hex[:8]
    return ConsumerSpec(
        durable=f"pull-{run}", service="pull", filter_subjects=(f"saga.pull.{run}.*",), fetch=fetch
    )


async def publish(bus: Bus, consumer: ConsumerSpec, saga: str) -> None:
    subject = consumer.filter_subjects[0].replace("*", saga)
    await bus.publish([Outgoing(subject, b"{}", {}, f"{subject}:{uuid.uuid4().hex}")])


class Handled:
    """A handler that remembers what it was given and says when it was."""

    def __init__(self) -> None:
        self.subjects: list[str] = []
        self.arrived = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.subjects.append(delivery.subject)
        self.arrived.set()


async def test_an_idle_consumer_hands_a_message_over_at_once_however_long_a_fetch_may_wait(
    bus: Bus,
) -> None:
    durable = spec(FetchPolicy(timeout_s=60.0))
    handled = Handled()
    consumer = LaneConsumer(bus, durable, handler=handled)
    await consumer.start()
    try:

        async def waiting() -> bool:  # the consumer's request is held by the server
            info = await bus.js.consumer_info(durable.stream, durable.durable)
            return (info.num_waiting or 0) >= 1

        await eventually(waiting)
        await publish(bus, durable, "s-1")
        async with asyncio.timeout(10):  # far below the fetch's 60 s
            await handled.arrived.wait()
    finally:
        await consumer.stop()
        await bus.js.delete_consumer(durable.stream, durable.durable)

    assert handled.subjects == [durable.filter_subjects[0].replace("*", "s-1")]


async def test_a_durable_deleted_under_its_consumer_is_asked_for_until_it_is_back(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    # The held request ends with 409 Consumer Deleted; the next ones with 503 (no responders),
    # each followed by a pause. Created again, the durable is read by the same consumer.
    durable = spec(FetchPolicy(timeout_s=0.5, pause_s=0.1))
    handled = Handled()
    consumer = LaneConsumer(bus, durable, handler=handled)
    await consumer.start()
    try:
        with caplog.at_level(logging.DEBUG, logger="choreography.bus.pull"):
            await bus.js.delete_consumer(durable.stream, durable.durable)

            async def refused_twice() -> bool:
                return sum("refused" in r.getMessage() for r in caplog.records) >= 2

            await eventually(refused_twice)
        await bus.ensure_consumer(durable)
        await publish(bus, durable, "s-2")
        async with asyncio.timeout(10):
            await handled.arrived.wait()
    finally:
        await consumer.stop()
        await bus.js.delete_consumer(durable.stream, durable.durable)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(" (")[0] for r in warnings] == [
        f"pull from {durable.durable} refused"
    ]
    assert handled.subjects == [durable.filter_subjects[0].replace("*", "s-2")]
