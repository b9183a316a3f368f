"""The load models: a closed loop caps sagas in flight; the open one starts them by the clock."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from harness.bench.load import Sample, Samples, closed_loop, open_loop
from harness.report.traces import percentile


async def test_a_closed_loop_never_has_more_than_its_concurrency_in_flight() -> None:
    in_flight, most = 0, 0

    async def one(index: int) -> bool:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)  # let the others run: the gate, not luck, must hold them back
        in_flight -= 1
        return True

    samples = await closed_loop(12, 3, one)

    assert most == 3
    assert len(samples) == 12 and all(s.ok for s in samples)
    assert all(s.scheduled == s.started for s in samples)


async def test_the_open_model_times_a_saga_from_when_it_was_due_not_when_it_ran() -> None:
    release = asyncio.Event()
    started: list[int] = []

    async def one(index: int) -> bool:
        started.append(index)
        if len(started) == 5:
            release.set()  # every saga waits for the last arrival: a queue builds up
        await release.wait()
        return True

    samples = await open_loop(rate=100.0, duration_s=0.05, one=one)

    assert [round(s.scheduled, 3) for s in samples] == [0.0, 0.01, 0.02, 0.03, 0.04]
    assert all(s.started >= s.scheduled for s in samples)
    first, last = samples[0], samples[-1]
    assert first.latency_s is not None and last.latency_s is not None
    assert first.latency_s >= last.scheduled  # the first waited for the whole queue to form
    assert first.latency_s > last.latency_s


async def test_a_saga_that_raises_is_kept_with_its_reason_and_no_end() -> None:
    async def one(index: int) -> bool:
        if index == 1:
            raise RuntimeError("stuck in charge_payment\nsecond line")
        return index != 2

    samples = await closed_loop(3, 3, one)

    assert [s.ok for s in samples] == [True, False, False]
    assert samples[1].ended is None and samples[1].latency_s is None
    assert samples[1].error == "RuntimeError: stuck in charge_payment"
    assert samples[2].ended is not None and samples[2].error is None


async def test_the_open_model_starts_at_least_one_saga() -> None:
    async def one(index: int) -> bool:
        return True

    assert len(await open_loop(rate=0.5, duration_s=1.0, one=one)) == 1


async def test_the_open_model_lets_a_saga_task_go_once_the_saga_has_ended() -> None:
    first: list[weakref.ref[asyncio.Task[Any]]] = []
    held_after_it_ended: list[bool] = []

    async def one(index: int) -> bool:
        task = asyncio.current_task()
        assert task is not None
        if index == 0:
            first.append(weakref.ref(task))
            return True
        await asyncio.sleep(0)  # the first task's done callbacks have run by now
        gc.collect()
        held_after_it_ended.append(first[0]() is not None)
        return True

    samples = await open_loop(rate=100.0, duration_s=0.02, one=one)

    assert len(samples) == 2 and all(s.ok for s in samples)
    assert held_after_it_ended == [False]


async def test_an_open_run_keeps_a_saga_that_raised_with_its_reason_and_no_end() -> None:
    async def one(index: int) -> bool:
        if index == 1:
            raise RuntimeError("stuck in charge_payment\nsecond line")
        return index != 2

    samples = await open_loop(rate=1000.0, duration_s=0.003, one=one)

    assert [s.ok for s in samples] == [True, False, False]
    assert samples[1].ended is None and samples[1].latency_s is None
    assert samples[1].error == "RuntimeError: stuck in charge_payment"
    assert samples[2].ended is not None and samples[2].error is None


class Abandoned(BaseException):
    """Not an ``Exception``: what a driver raises this way is not a saga's failure."""


async def test_an_open_run_raises_what_a_saga_raised_beyond_an_error() -> None:
    async def one(index: int) -> bool:
        if index == 0:
            raise Abandoned  # ended long before the run: its task is gone, not its exception
        return True

    with pytest.raises(Abandoned):
        await open_loop(rate=1000.0, duration_s=0.003, one=one)


def test_the_samples_kept_in_arrays_read_back_exactly_and_give_the_same_percentiles() -> None:
    given = [
        Sample(0.0, 0.001, 0.1234567891, True),
        Sample(0.2, 0.25, None, False, "TimeoutError: no outcome"),
        Sample(0.4, 0.4, 0.9876543210987, False),
        Sample(0.6, 0.61, 3.3333333333333335, True),
    ]
    kept = Samples(len(given))
    for index in (3, 1, 0, 2):  # sagas end out of order
        kept.put(index, given[index])

    assert list(kept) == given
    assert kept[-1] == given[-1] and kept[1:3] == given[1:3]
    latencies = [1000 * s.latency_s for s in given if s.latency_s is not None]
    read_back = [1000 * s.latency_s for s in kept if s.latency_s is not None]
    assert read_back == latencies
    assert [percentile(read_back, p) for p in (50, 95, 99)] == [
        percentile(latencies, p) for p in (50, 95, 99)
    ]
    with pytest.raises(IndexError):
        kept[4]
