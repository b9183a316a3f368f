"""The consumer's in-progress heartbeat: a message being worked on is refreshed every tick.

The ack wait is short (2 s) so that a dead process's messages come back quickly; a live one
keeps its messages by telling the server they are in progress. Between two refreshes of one
message there must be no more than one tick (a third of the ack wait) plus whatever the loop
was late by: before, a message fetched just after a tick waited almost two ticks for its first
refresh, so a loop late by a third of the ack wait lost it to a redelivery (suspected in a
suite run under a load of 8-9: a held step tried again).
"""

from __future__ import annotations

import asyncio

import pytest

from choreography.bus.batches import BatchConsumer
from choreography.bus.consumer import _Pending
from choreography.bus.spec import ConsumerSpec

ACK_WAIT_S = 3.0
TICK_S = ACK_WAIT_S / 3


class Clock:
    """A fake clock that the fake sleep moves on."""

    def __init__(self) -> None:
        self.now = 100.0


class Msg:
    """Records when the consumer told the server it is still being worked on."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.refreshed: list[float] = []

    async def in_progress(self) -> None:
        self.refreshed.append(self.clock.now)


async def test_a_message_fetched_just_after_a_tick_is_refreshed_at_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    consumer = BatchConsumer(
        bus=None,  # type: ignore[arg-type]  # the heartbeat never touches the bus
        spec=ConsumerSpec(durable="d", service="s", filter_subjects=(), ack_wait_s=ACK_WAIT_S),
    )
    msg = Msg(clock)
    fetched = clock.now + 0.01  # just after the heartbeat's first sleep began
    ticks = 0
    yield_to_loop = asyncio.sleep  # the real one: the fake below replaces it in asyncio

    async def sleep(seconds: float) -> None:
        nonlocal ticks
        clock.now += seconds
        ticks += 1
        if ticks == 1:
            consumer._pending[id(msg)] = _Pending(msg)  # type: ignore[arg-type]
        if ticks > 6:
            consumer._closed = True
        await yield_to_loop(0)

    monkeypatch.setattr(asyncio, "sleep", sleep)  # what the heartbeat sleeps with
    await consumer._heartbeat()

    gaps = [b - a for a, b in zip([fetched, *msg.refreshed], msg.refreshed, strict=False)]
    assert len(msg.refreshed) >= 5
    assert max(gaps) <= TICK_S + 1e-6, gaps
