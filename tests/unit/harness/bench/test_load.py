"""The load models: a closed loop caps sagas in flight; the open one starts them by the clock."""

from __future__ import annotations

import asyncio

from harness.bench.load import closed_loop, open_loop


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
