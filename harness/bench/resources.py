"""CPU seconds and memory of every process a run uses, by kind, without measuring ourselves.

The processes are listed at the start and at the end of a measured run (two walks of the
process tree, not one every few milliseconds) and classified by what they are: this process
(the harness, with the services or the worker when they run inside it), the broker or the
workflow server, the database, separate service or worker processes. CPU time counts what
the processes used, plus what their exited children used (a Postgres backend that ends
mid-run hands its time to the postmaster). Memory is sampled once a second from the
processes listed at the start: resident set size per kind, for the peak, the growth and an
endurance run's timeline.

Attached to a deployment from `saga-compare up`, the processes that do the work are not
ours: its topology file names them (`deployed`), and they are listed beside ours, each with
its kind (a choreography process kind is ``services``, the worker ``worker``, nats-server
``broker``, the Temporal server ``server``, Postgres and its backends ``database``).

CPU is summed by kind; memory is also kept by process name, finer where a kind has several
processes: a deployment's choreography processes by their own kind (``payment``, ``tracker``
...), a service process we started by its ``--service``. That is what tells an endurance run
which participant grows; run in-process, the services or the worker are the harness's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from harness.deploy import topology

HARNESS = "harness"
GROUPS = ("harness", "services", "worker", "broker", "server", "database", "exporter", "other")
"""Every kind a process can be, in the order reports list them."""
SAMPLE_INTERVAL_S = 1.0
DEPLOYED_KINDS = {
    "nats": "broker",
    "temporal": "server",
    "postgres": "database",
    "worker": "worker",
}
"""A deployment's process kinds by what they are; every other kind is a choreography service."""


@dataclass(frozen=True)
class OutsideProcess:
    """A process of a deployment this one did not start: its kind (what CPU is summed by) and
    its name (what memory is kept by: the deployment's process kind, ``payment`` ...)."""

    process: psutil.Process
    kind: str
    name: str


Outside = Sequence[OutsideProcess]
"""Processes of a deployment this one did not start."""


def classify(process: psutil.Process) -> str:
    """What a child process is, from its name and command line."""
    try:
        name = process.name()
        command = " ".join(process.cmdline())
    except psutil.Error:
        return "other"
    if "nats-server" in name:
        return "broker"
    if name.startswith("temporal"):
        return "server"
    if name.startswith("postgres") or "postmaster" in command:
        return "database"
    if "orchestration.worker" in command:
        return "worker"
    if "-m choreography" in command or "choreography/__main__" in command:
        return "services"
    if "span_export" in command or "trace_export" in command:
        return "exporter"
    return "other"


def name_of(process: psutil.Process, kind: str) -> str:
    """The name a child process's memory is kept under: a service process by its
    ``--service`` (several run side by side), every other by its kind."""
    if kind != "services":
        return kind
    try:
        argv = process.cmdline()
    except psutil.Error:
        return kind
    flag = argv.index("--service") if "--service" in argv else -1
    return argv[flag + 1] if 0 <= flag < len(argv) - 1 else kind


@dataclass
class Processes:
    """This process and its descendants, each with its kind, and the name its memory is kept
    under (its kind unless ``names`` says otherwise)."""

    kinds: dict[int, tuple[psutil.Process, str]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)

    @classmethod
    def list(cls, outside: Outside = ()) -> Processes:
        """This process, its descendants, and ``outside`` with theirs (a deployment's)."""
        me = psutil.Process()
        found = {me.pid: (me, HARNESS)}
        names = {me.pid: HARNESS}
        for child in me.children(recursive=True):
            kind = classify(child)
            found[child.pid] = (child, kind)
            names[child.pid] = name_of(child, kind)
        for member in outside:
            family = [member.process]
            with contextlib.suppress(psutil.Error):
                family += member.process.children(recursive=True)
            for process in family:
                if process.pid not in found:
                    found[process.pid] = (process, member.kind)
                    names[process.pid] = member.name
        return cls(found, names)

    def cpu(self) -> dict[str, float]:
        """CPU seconds by kind: user + system, with the exited children of every child."""
        totals = dict.fromkeys(GROUPS, 0.0)
        for pid, (process, kind) in self.kinds.items():
            if pid == os.getpid():
                # Our own clock, to the nanosecond (the kernel's counters tick every 10 ms);
                # the harness's exited children (a finished helper command) are not its work.
                totals[kind] += time.process_time()
                continue
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue  # it ended: its time is in its parent's children counters
            totals[kind] += times.user + times.system + times.children_user + times.children_system
        return totals

    def rss(self) -> dict[str, int]:
        """Resident bytes by kind (shared pages counted in every process that maps them)."""
        return self.memory()[0]

    def memory(self) -> tuple[dict[str, int], dict[str, int]]:
        """Resident bytes by kind and by process name, from one reading of each process."""
        kinds = dict.fromkeys(GROUPS, 0)
        names: dict[str, int] = {}
        for pid, (process, kind) in self.kinds.items():
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            kinds[kind] += rss
            name = self.names.get(pid, kind)
            names[name] = names.get(name, 0) + rss
        return kinds, names


@dataclass(frozen=True)
class MemorySample:
    at: float
    """Seconds since the sampler started."""
    rss_mb: dict[str, float]
    """By process kind (the peaks)."""
    processes: dict[str, float] = field(default_factory=dict)
    """By process name (the endurance slopes and series); empty: the same as by kind."""

    @property
    def by_process(self) -> dict[str, float]:
        return self.processes or self.rss_mb


class MemorySampler:
    """Resident memory of the listed processes, once a second, while the block runs."""

    def __init__(self, processes: Processes, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.processes = processes
        self.interval_s = interval_s
        self.samples: list[MemorySample] = []
        self._origin = time.perf_counter()
        self._task: asyncio.Task[None] | None = None

    def sample(self) -> None:
        kinds, names = self.processes.memory()
        at = time.perf_counter() - self._origin
        self.samples.append(MemorySample(at, _mb(kinds), _mb(names)))

    async def _watch(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(self.interval_s)

    def __enter__(self) -> MemorySampler:
        self._origin = time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        self.sample()

    def peak_mb(self) -> dict[str, float]:
        """The highest resident memory each kind reached."""
        return _peaks(self.samples)

    def growth_mb(self) -> float:
        """Total resident memory at the end minus at the start."""
        if not self.samples:
            return 0.0
        return _total(self.samples[-1]) - _total(self.samples[0])


def _mb(sizes: dict[str, int]) -> dict[str, float]:
    return {key: size / 2**20 for key, size in sizes.items() if size}


def _total(sample: MemorySample) -> float:
    return sum(sample.rss_mb.values())


def _peaks(samples: Iterable[MemorySample]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for sample in samples:
        for kind, mb in sample.rss_mb.items():
            values.setdefault(kind, []).append(mb)
    return {kind: max(series) for kind, series in values.items()}


def deployed(state_dir: Path, variant: str) -> Outside:
    """The running processes of a deployment from ``up`` that serve ``variant`` (and the
    servers both share), from its topology file as it is now (pids change on restarts); each
    choreography process kind keeps its own name for memory (``payment``, ``tracker`` ...)."""
    found = topology.read(state_dir)
    if found is None:
        return []
    chosen: list[OutsideProcess] = []
    for info in found.processes.values():
        if info.variant not in (None, variant) or not topology.alive(info.pid, info.started):
            continue
        with contextlib.suppress(psutil.Error):
            assert info.pid is not None
            kind = DEPLOYED_KINDS.get(info.kind, "services")
            name = kind if info.kind in DEPLOYED_KINDS else info.kind
            chosen.append(OutsideProcess(psutil.Process(info.pid), kind, name))
    return chosen


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each kind used between two readings (kinds that used none left out)."""
    delta = {kind: after.get(kind, 0.0) - before.get(kind, 0.0) for kind in GROUPS}
    return {kind: max(0.0, seconds) for kind, seconds in delta.items() if seconds > 0.0005}


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per minute (0 with fewer than 2)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0
    return 60 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
