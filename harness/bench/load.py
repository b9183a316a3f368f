"""The two load models: a closed loop (N sagas, C in flight) and an open one (a fixed rate).

A closed loop starts the next saga only when one ends, so a slow system is offered less work:
its latencies hide the queue a real arrival stream would build (coordinated omission). The
open model starts sagas by the clock -- saga ``i`` is due at ``t0 + i / rate`` whether or
not earlier ones have ended -- and measures each latency from that scheduled start, so time
spent waiting to start (a late event loop included) counts.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import overload

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


async def open_loop(rate: float, duration_s: float, one: One) -> Samples:
    """Start ``round(rate * duration_s)`` sagas (at least one), saga ``i`` at ``i / rate``.

    Nothing limits how many are in flight: that is the point. A late loop starts every
    overdue saga at once, each still timed from when it was due. A saga's task is let go as
    it ends, its timing kept in ``Samples`` (a long run keeps no object per saga).
    """
    count = max(1, round(rate * duration_s))
    origin = time.perf_counter()
    samples = Samples(count)
    running: set[asyncio.Task[None]] = set()  # the loop only holds tasks weakly
    failed: list[asyncio.Task[None]] = []

    async def timed(index: int, due: float, started: float) -> None:
        samples.put(index, await _timed(one, index, due, started, origin))

    def ended(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if task.cancelled() or task.exception() is not None:
            failed.append(task)  # raised below, as gather would

    for index in range(count):
        due = index / rate
        delay = due - (time.perf_counter() - origin)
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.perf_counter() - origin
        task = asyncio.create_task(timed(index, due, started))
        running.add(task)
        task.add_done_callback(ended)
    await asyncio.gather(*running)
    for task in failed:
        task.result()
    return samples


class Samples(Sequence[Sample]):
    """Each saga's timing in flat arrays, read back as `Sample`s: a few bytes a saga and
    nothing the garbage collector tracks, so a long run's bench does not grow the heap it
    measures by an object per saga."""

    def __init__(self, count: int) -> None:
        self._scheduled = array("d", bytes(8 * count))
        self._started = array("d", bytes(8 * count))
        self._ended = array("d", [math.nan]) * count  # NaN: no end
        self._ok = bytearray(count)
        self._errors: dict[int, str] = {}  # only the sagas that raised

    def put(self, index: int, sample: Sample) -> None:
        self._scheduled[index] = sample.scheduled
        self._started[index] = sample.started
        self._ended[index] = math.nan if sample.ended is None else sample.ended
        self._ok[index] = sample.ok
        if sample.error is not None:
            self._errors[index] = sample.error

    def __len__(self) -> int:
        return len(self._ok)

    @overload
    def __getitem__(self, index: int) -> Sample: ...
    @overload
    def __getitem__(self, index: slice) -> list[Sample]: ...
    def __getitem__(self, index: int | slice) -> Sample | list[Sample]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self))[index]  # negative indices, and IndexError past the end
        ended = self._ended[i]
        return Sample(
            self._scheduled[i],
            self._started[i],
            None if math.isnan(ended) else ended,
            bool(self._ok[i]),
            self._errors.get(i),
        )

    def __iter__(self) -> Iterator[Sample]:
        return (self[i] for i in range(len(self)))


async def _timed(one: One, index: int, due: float, started: float, origin: float) -> Sample:
    try:
        ok = await one(index)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return Sample(due, started, None, False, reason)
    return Sample(due, started, time.perf_counter() - origin, ok)
