"""Load benchmark: happy-path sagas at a given concurrency, against the bare engine's floor.

Each variant is measured in the same run as its floor (the same number of sagas through
no-op NATS handlers / no-op Temporal activities), with tracing on and off, so the ratios hold
on whatever machine runs them. CPU and peak memory include the servers (child processes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from harness.runner import run_saga
from harness.scenarios import FAST, SagaCase, order
from harness.traces import percentile
from shared.runtime import SagaRuntime
from shared.seed import Product, SeedData, seed
from shared.telemetry import Tracing

TARGETS = {"orchestration": 0.8, "choreography": 0.15}
"""Minimum throughput ratio of each variant to its bare-engine floor (issue 5)."""
TRACING_BUDGET = 0.15
"""Tracing may cost at most 15% of throughput against the same run with tracing off."""


@dataclass(frozen=True)
class Measurement:
    variant: str
    kind: str
    tracing: bool
    orders: int
    concurrency: int
    wall_s: float
    throughput: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cpu_s: float
    peak_rss_mb: float


class ResourceSampler:
    """CPU time and peak resident memory of this process and its children (the servers)."""

    def __init__(self, interval_s: float = 0.05) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._me = psutil.Process()
        self._task: asyncio.Task[None] | None = None

    def _family(self) -> list[psutil.Process]:
        return [self._me, *self._me.children(recursive=True)]

    def cpu(self) -> float:
        total = 0.0
        for process in self._family():
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total

    def _rss(self) -> int:
        total = 0
        for process in self._family():
            try:
                total += process.memory_info().rss
            except psutil.Error:
                continue
        return total

    async def _watch(self) -> None:
        while True:
            self.peak = max(self.peak, self._rss())
            await asyncio.sleep(self.interval_s)

    def __enter__(self) -> ResourceSampler:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def measure(
    variant: str,
    kind: str,
    tracing: bool,
    orders: int,
    concurrency: int,
    one: Callable[[int], Awaitable[float]],
) -> Measurement:
    """Run ``orders`` calls of ``one`` (returning a latency in ms), ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def limited(index: int) -> float:
        async with gate:
            return await one(index)

    with ResourceSampler() as sampler:
        cpu_before = sampler.cpu()
        started = time.perf_counter()
        latencies = await asyncio.gather(*(limited(i) for i in range(orders)))
        wall = time.perf_counter() - started
        cpu = sampler.cpu() - cpu_before
    return Measurement(
        variant=variant,
        kind=kind,
        tracing=tracing,
        orders=orders,
        concurrency=concurrency,
        wall_s=wall,
        throughput=orders / wall,
        p50_ms=percentile(list(latencies), 50),
        p95_ms=percentile(list(latencies), 95),
        p99_ms=percentile(list(latencies), 99),
        cpu_s=cpu,
        peak_rss_mb=sampler.peak / 2**20,
    )


def bench_seed(orders: int) -> SeedData:
    """Enough stock and points for every benchmark order to complete."""
    return SeedData(
        products={"widget": Product(name="Widget", price_cents=1_999, stock=orders * 2)},
        points={"alice": orders * 10},
    )


async def bench_sagas(
    runtime: SagaRuntime, orders: int, concurrency: int, tracing: bool, tag: str
) -> Measurement:
    await seed(runtime.domain, bench_seed(orders))
    policy = FAST.model_copy(update={"deadline_s": 300.0, "attempt_timeout_s": 30.0})

    async def one(index: int) -> float:
        case = SagaCase(order(f"bench-{index}", items={"widget": 1}, points=1))
        run = await run_saga(runtime, case, policy, f"bench-{index}-{tag}", 600, scenario="bench")
        if run.outcome.status.value != "COMPLETED":
            raise RuntimeError(f"benchmark saga {run.saga_id} ended {run.outcome.status}")
        return run.duration_ms

    return await measure(runtime.variant, "saga", tracing, orders, concurrency, one)


async def bench_floor(runtime: SagaRuntime, orders: int, concurrency: int) -> Measurement:
    """The bare engine: the variant's own floor function, timed the same way."""
    floor = getattr(runtime, "floor", None)
    if floor is None:
        raise RuntimeError(f"the {runtime.variant} runtime has no floor() to measure")
    one: Callable[[int], Awaitable[float]] = floor
    return await measure(runtime.variant, "floor", False, orders, concurrency, one)


async def bench_variant(
    runtime: SagaRuntime, tracing: Tracing, orders: int, concurrency: int, tag: str
) -> list[Measurement]:
    """Floor, sagas with tracing, sagas without: measured back to back on one runtime."""
    floor = await bench_floor(runtime, orders, concurrency)
    tracing.set_enabled(True)
    traced = await bench_sagas(runtime, orders, concurrency, True, f"{tag}t")
    tracing.set_enabled(False)
    try:
        untraced = await bench_sagas(runtime, orders, concurrency, False, f"{tag}u")
    finally:
        tracing.set_enabled(True)
    return [floor, traced, untraced]


def verdict(measurements: list[Measurement]) -> dict[str, dict[str, Any]]:
    """Per variant: ratios to the floor and tracing overhead against their targets."""
    out: dict[str, dict[str, Any]] = {}
    for variant in dict.fromkeys(m.variant for m in measurements):
        mine = {(m.kind, m.tracing): m for m in measurements if m.variant == variant}
        floor, traced, untraced = (
            mine[("floor", False)],
            mine[("saga", True)],
            mine[("saga", False)],
        )
        ratio = traced.throughput / floor.throughput
        overhead = 1 - traced.throughput / untraced.throughput
        out[variant] = {
            "ratio_to_floor": ratio,
            "ratio_target": TARGETS.get(variant),
            "ratio_met": ratio >= TARGETS.get(variant, 0),
            "tracing_overhead": overhead,
            "tracing_budget": TRACING_BUDGET,
            "tracing_met": overhead <= TRACING_BUDGET,
        }
    return out


def bench_document(measurements: list[Measurement]) -> dict[str, Any]:
    return {"measurements": [asdict(m) for m in measurements], "verdict": verdict(measurements)}
