"""One measured run: a driver under a load model, with CPU, memory and spans around it."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.bench.endurance import by_process, p95_drift, settle_s, slopes_after
from harness.bench.load import Sample, closed_loop, open_loop
from harness.bench.resources import (
    MemorySample,
    MemorySampler,
    Outside,
    Processes,
    cpu_delta,
    slope_per_min,
)
from harness.bench.spans import SpanTail, spans_per_saga, step_p95
from harness.bench.workload import Driver, SagaDriver
from harness.report.traces import percentile
from shared.telemetry import Tracing

CLOSED = "closed"
OPEN = "open"
WINDOWS = 30
"""An open run's latency timeline: about this many windows of arrivals (at least 1 s each)."""


@dataclass(frozen=True)
class Load:
    """A closed loop (``orders`` at ``concurrency``) or an open one (``rate`` for ``duration``)."""

    model: str
    orders: int = 0
    concurrency: int = 0
    rate: float = 0.0
    duration_s: float = 0.0
    deadline_s: float = 30.0
    """A saga counts as completed in time only if it ended this soon after it was due."""

    @property
    def sagas(self) -> int:
        return self.orders if self.model == CLOSED else max(1, round(self.rate * self.duration_s))

    async def drive(self, driver: Driver) -> Sequence[Sample]:
        if self.model == CLOSED:
            return await closed_loop(self.orders, self.concurrency, driver.one)
        return await open_loop(self.rate, self.duration_s, driver.one)


@dataclass
class Measurement:
    """What one run of one kind on one style measured (every time in ms, CPU in seconds)."""

    style: str
    variant: str
    kind: str
    tracing: bool
    load: str
    sagas: int
    concurrency: int
    rate: float
    completed: int
    """Sagas that ended as they should within the deadline."""
    wall_s: float
    throughput: float
    """Sagas that ended as they should (in time or late) per second, from the first scheduled
    start to the last end: the rate the system served, whatever was offered."""
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: dict[str, float]
    """CPU seconds by process kind (harness, broker, server, database ...)."""
    cpu_ms_per_saga: float
    peak_rss_mb: dict[str, float]
    rss_growth_mb: float
    rss_slope_mb_per_min: float
    step_p95_ms: dict[str, float] = field(default_factory=dict)
    spans_per_saga: float = 0.0
    invariants_held: bool | None = None
    errors: list[str] = field(default_factory=list)
    """Distinct reasons sagas had no end (at most a few)."""
    timeline: dict[str, list[list[float]]] = field(default_factory=dict)
    """Open runs: ``memory`` [s, MB total], ``memory:<name>`` [s, MB] for each process (by
    kind, a deployment's by its own name: resources.py), and ``latency`` [s, p50, p95, sagas]
    per window."""
    repeat: int = 1
    sagas_per_cpu_s: float = 0.0
    """Sagas per second one busy core would serve at this CPU per saga (all processes)."""
    settle_s: float = 0.0
    """Open runs: the first seconds left out of the next two figures (bench/endurance.py)."""
    rss_slope_after_settle: dict[str, float] = field(default_factory=dict)
    """Open runs: each process's resident-memory slope after settling, MB/min (the names of
    the timeline's ``memory:<name>`` series)."""
    p95_drift: float | None = None
    """Open runs: p95 of the later half of the settled sagas against the earlier half's, - 1."""

    @property
    def completed_fraction(self) -> float:
        return self.completed / self.sagas if self.sagas else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "completed_fraction": self.completed_fraction}


@dataclass
class Observed:
    """The raw observations of one run, before they are summarized."""

    samples: Sequence[Sample]
    wall_s: float
    cpu_s: dict[str, float]
    memory: MemorySampler
    steps: dict[str, float]
    spans_per_saga: float
    invariants_held: bool | None


async def measure(
    style: str,
    variant: str,
    driver: Driver,
    load: Load,
    tracing: Tracing,
    traces: SpanTail,
    *,
    repeat: int = 1,
    outside: Callable[[], Outside] = lambda: (),
) -> Measurement:
    """Run the driver under the load, with CPU, memory and (tracing on) step spans around it;
    ``outside`` lists the processes of a deployment the run drives (read at start and end)."""
    traced = tracing.sampler.enabled
    traces.mark()
    processes = Processes.list(outside())
    cpu_before = processes.cpu()
    with MemorySampler(processes) as memory:
        started = time.perf_counter()
        samples = await load.drive(driver)
        wall = time.perf_counter() - started
    cpu = cpu_delta(cpu_before, Processes.list(outside()).cpu())
    tracing.flush()
    saga = driver if isinstance(driver, SagaDriver) else None
    spans = traces.spans() if traced and saga is not None else []
    observed = Observed(
        samples=samples,
        wall_s=wall,
        cpu_s=cpu,
        memory=memory,
        steps=step_p95(spans, saga.tag) if saga else {},
        spans_per_saga=spans_per_saga(spans, saga.tag, len(samples)) if saga else 0.0,
        invariants_held=await _invariants(saga, len(samples)),
    )
    return summarize(style, variant, driver.kind, traced, load, observed, repeat)


async def _invariants(saga: SagaDriver | None, started: int) -> bool | None:
    """The conservation invariants, once every saga has an outcome (None when some are still
    running past the harness's wait: their effects are not final yet)."""
    if saga is None or len(saga.ended) < started:
        return None
    return await saga.invariants()


def summarize(
    style: str, variant: str, kind: str, traced: bool, load: Load, seen: Observed, repeat: int
) -> Measurement:
    """Counts, throughput, percentiles from the scheduled starts, CPU and memory per saga."""
    samples = seen.samples
    served = [s for s in samples if s.ok]
    in_time = [s for s in served if (s.latency_s or 0) <= load.deadline_s]
    latencies = [1000 * s.latency_s for s in samples if s.latency_s is not None]
    ends = [s.ended for s in samples if s.ended is not None]
    window = max(ends, default=seen.wall_s) - min((s.scheduled for s in samples), default=0.0)
    memory_points = [(m.at, sum(m.rss_mb.values())) for m in seen.memory.samples]
    cpu_total = sum(seen.cpu_s.values())
    settled = settle_s(load.duration_s) if load.model == OPEN else 0.0
    opened = load.model == OPEN
    return Measurement(
        style=style,
        variant=variant,
        kind=kind,
        tracing=traced,
        load=load.model,
        sagas=len(samples),
        concurrency=load.concurrency,
        rate=load.rate,
        completed=len(in_time),
        wall_s=seen.wall_s,
        throughput=len(served) / window if window > 0 else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        max_ms=max(latencies, default=0.0),
        cpu_s=seen.cpu_s,
        cpu_ms_per_saga=1000 * cpu_total / max(len(samples), 1),
        peak_rss_mb=seen.memory.peak_mb(),
        rss_growth_mb=seen.memory.growth_mb(),
        rss_slope_mb_per_min=slope_per_min(memory_points),
        step_p95_ms=seen.steps,
        spans_per_saga=seen.spans_per_saga,
        invariants_held=seen.invariants_held,
        errors=sorted({s.error for s in samples if s.error})[:5],
        timeline=_timeline(samples, seen.memory.samples, load.duration_s) if opened else {},
        repeat=repeat,
        sagas_per_cpu_s=len(samples) / cpu_total if cpu_total > 0 else 0.0,
        settle_s=settled,
        rss_slope_after_settle=slopes_after(seen.memory.samples, settled) if opened else {},
        p95_drift=p95_drift(samples, settled) if opened else None,
    )


def _timeline(
    samples: Sequence[Sample], memory: list[MemorySample], duration_s: float
) -> dict[str, list[list[float]]]:
    """Memory over time (in all, and by process), and latency per window of arrivals
    (for drift over an endurance run)."""
    width = max(1.0, round(duration_s / WINDOWS))
    windows: dict[int, list[float]] = {}
    for sample in samples:
        if sample.latency_s is not None:
            windows.setdefault(int(sample.scheduled // width), []).append(1000 * sample.latency_s)
    latency = [
        [index * width, percentile(values, 50), percentile(values, 95), float(len(values))]
        for index, values in sorted(windows.items())
    ]
    total = [[m.at, sum(m.rss_mb.values())] for m in memory]
    return {"memory": total, "latency": latency, **by_process(memory)}
