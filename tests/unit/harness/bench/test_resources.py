"""CPU and memory by process kind: ours, the servers', the database's."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from harness.bench.resources import (
    MemorySampler,
    Processes,
    classify,
    cpu_delta,
    deployed,
    name_of,
    slope_per_min,
)
from harness.deploy import topology
from harness.deploy.control import ControlAddress
from shared.settings import StoreKind


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


@pytest.mark.parametrize(
    ("process", "kind", "name"),
    [
        (FakeProcess("python3", "python", "-m", "choreography", "--service", "payment"), "services",
         "payment"),
        (FakeProcess("python3", "python", "-m", "choreography"), "services", "services"),
        (FakeProcess("nats-server", "nats-server", "--service", "x"), "broker", "broker"),
    ],
)  # fmt: skip
def test_a_service_process_keeps_its_memory_under_its_service_and_any_other_under_its_kind(
    process: FakeProcess, kind: str, name: str
) -> None:
    assert name_of(process, kind) == name  # type: ignore[arg-type]


def test_memory_is_summed_by_kind_and_by_process_name_from_one_reading() -> None:
    me = psutil.Process()
    processes = Processes({me.pid: (me, "services")}, {me.pid: "payment"})

    kinds, names = processes.memory()

    assert set(names) == {"payment"} and names["payment"] > 0
    assert kinds["services"] == names["payment"] and kinds["harness"] == 0


async def test_the_sampler_keeps_each_process_name_beside_the_kinds() -> None:
    me = psutil.Process()
    sampler = MemorySampler(Processes({me.pid: (me, "worker")}, {me.pid: "worker"}), 0.01)
    with sampler:
        await asyncio.sleep(0.03)

    last = sampler.samples[-1]
    assert set(last.rss_mb) == {"worker"} and set(last.by_process) == {"worker"}


def test_a_deployments_choreography_processes_are_named_by_their_kind_and_summed_as_services(
    tmp_path: Path,
) -> None:
    """Every process of this fake deployment is this test's own process (alive, ours to read);
    what is under test is how each is named and which variant's are picked."""
    me, started = os.getpid(), psutil.Process().create_time()
    info = {
        "payment": ("choreography", me),
        "tracker": ("choreography", me),
        "worker": ("orchestration", me),
        "nats": ("choreography", me),
        "postgres": (None, me),
        "orders": ("choreography", 2**22 + 7),  # not running: left out
    }
    topology.write(
        topology.Topology(
            state_dir=tmp_path,
            supervisor_pid=me,
            supervisor_started=started,
            started_at=time.time(),
            store=StoreKind("sqlite"),
            nats_url="nats://127.0.0.1:1",
            temporal_address="127.0.0.1:2",
            ports=topology.Ports(nats=1, nats_monitor=3, temporal=2),
            control=ControlAddress(port=4, token="t"),
            variants={},
            processes={
                kind: topology.ProcessInfo(
                    kind=kind,
                    pid=pid,
                    started=started,
                    log=tmp_path / f"{kind}.log",
                    variant=variant,
                )
                for kind, (variant, pid) in info.items()
            },
            logs=tmp_path,
        )
    )

    members = {m.name: m.kind for m in deployed(tmp_path, "choreography")}

    assert members == {
        "payment": "services",
        "tracker": "services",
        "broker": "broker",
        "database": "database",
    }
