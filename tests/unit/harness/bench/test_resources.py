"""CPU and memory by process kind: ours, the servers', the database's."""

from __future__ import annotations

import asyncio
import os

import psutil
import pytest

from harness.bench.resources import (
    MemorySampler,
    Processes,
    classify,
    cpu_delta,
    slope_per_min,
)


class FakeProcess:
    """What `classify` reads of a process: its name and command line."""

    def __init__(self, name: str, *argv: str) -> None:
        self._name = name
        self._argv = list(argv)

    def name(self) -> str:
        return self._name

    def cmdline(self) -> list[str]:
        return self._argv


@pytest.mark.parametrize(
    ("process", "kind"),
    [
        (FakeProcess("nats-server", "nats-server", "-js"), "broker"),
        (FakeProcess("temporal", "temporal", "server", "start-dev"), "server"),
        (FakeProcess("postgres", "postgres: saga idle"), "database"),
        (FakeProcess("python3", "python", "-m", "orchestration.worker"), "worker"),
        (
            FakeProcess("python3", "python", "-m", "choreography", "--service", "payment"),
            "services",
        ),
        (FakeProcess("bash", "bash"), "other"),
    ],
)
def test_a_child_process_is_classified_by_what_it_runs(process: FakeProcess, kind: str) -> None:
    assert classify(process) == kind  # type: ignore[arg-type]


def test_this_process_is_the_harness_and_its_cpu_only_grows() -> None:
    processes = Processes.list()
    before = processes.cpu()
    sum(i * i for i in range(200_000))  # some CPU of our own

    used = cpu_delta(before, processes.cpu())

    assert processes.kinds[os.getpid()][1] == "harness"
    assert used.get("harness", 0) > 0
    assert all(seconds > 0 for seconds in used.values())


async def test_memory_is_sampled_while_the_block_runs_and_once_at_its_end() -> None:
    sampler = MemorySampler(Processes.list(), interval_s=0.01)
    with sampler:
        await asyncio.sleep(0.05)  # the sampler's own clock is what is under test

    assert len(sampler.samples) >= 3
    assert sampler.peak_mb()["harness"] >= psutil.Process().memory_info().rss / 2**20 * 0.5
    assert sampler.samples[-1].at >= sampler.samples[0].at


def test_a_slope_is_per_minute_and_zero_without_two_points() -> None:
    assert slope_per_min([(0.0, 100.0), (30.0, 101.0), (60.0, 102.0)]) == pytest.approx(2.0)
    assert slope_per_min([(5.0, 1.0)]) == 0.0
