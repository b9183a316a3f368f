"""The two load models: a closed loop (N sagas, C in flight) and an open one (a fixed rate).

A closed loop starts the next saga only when one ends, so a slow system is offered less work:
its latencies hide the queue a real arrival stream would build (coordinated omission). The
open model starts sagas by the clock -- saga ``i`` is due at ``t0 + i / rate`` whether or
not earlier ones have ended -- and measures each latency from that scheduled start, so time
spent waiting to start (a late event loop included) counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

One = Callable[[int], Awaitable[bool]]
"""Run saga ``i`` to its end; True when it ended as it should (a happy path: COMPLETED)."""


@dataclass(frozen=True)
class Sample:
    """One saga's timing (seconds on the run's clock) and whether it ended well in time."""

    scheduled: float
    started: float
    ended: float | None
    """None: it failed, or had not ended when the harness stopped waiting."""
    ok: bool
    error: str | None = None
    """Why it has no end: the exception the saga's driver raised, in one line."""

    @property
    def latency_s(self) -> float | None:
        """From the scheduled start (the open model's arrival) to the observed end."""
        return None if self.ended is None else self.ended - self.scheduled


async def closed_loop(orders: int, concurrency: int, one: One) -> list[Sample]:
    """``orders`` sagas, ``concurrency`` at a time; each is 'scheduled' when its slot frees."""
    gate = asyncio.Semaphore(concurrency)
    origin = time.perf_counter()

    async def limited(index: int) -> Sample:
        async with gate:
            started = time.perf_counter() - origin
            return await _timed(one, index, started, started, origin)

    return list(await asyncio.gather(*(limited(i) for i in range(orders))))


async def open_loop(rate: float, duration_s: float, one: One) -> list[Sample]:
    """Start ``round(rate * duration_s)`` sagas (at least one), saga ``i`` at ``i / rate``.

    Nothing limits how many are in flight: that is the point. A late loop starts every
    overdue saga at once, each still timed from when it was due.
    """
    count = max(1, round(rate * duration_s))
    origin = time.perf_counter()
    tasks: list[asyncio.Task[Sample]] = []
    for index in range(count):
        due = index / rate
        delay = due - (time.perf_counter() - origin)
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter() - origin
        tasks.append(asyncio.create_task(_timed(one, index, due, started, origin)))
    return list(await asyncio.gather(*tasks))


async def _timed(one: One, index: int, due: float, started: float, origin: float) -> Sample:
    try:
        ok = await one(index)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return Sample(due, started, None, False, reason)
    return Sample(due, started, time.perf_counter() - origin, ok)
