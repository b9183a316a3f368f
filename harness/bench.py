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

from harness.namespace import Namespace, seed_namespace
from harness.runner import run_saga
from harness.scenarios import FAST, SagaCase, order
from harness.traces import percentile
from shared.runtime import SagaRuntime
from shared.seed import Product, SeedData
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
    batch: Callable[[], Awaitable[list[float]]],
) -> Measurement:
    """Time one batch (returning each saga's latency in ms) with CPU and peak memory."""
    with ResourceSampler() as sampler:
        cpu_before = sampler.cpu()
        started = time.perf_counter()
        latencies = await batch()
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
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        cpu_s=cpu,
        peak_rss_mb=sampler.peak / 2**20,
    )


async def gather_limited(
    orders: int, concurrency: int, one: Callable[[int], Awaitable[float]]
) -> list[float]:
    gate = asyncio.Semaphore(concurrency)

    async def limited(index: int) -> float:
        async with gate:
            return await one(index)

    return list(await asyncio.gather(*(limited(i) for i in range(orders))))


def bench_seed(orders: int) -> SeedData:
    """Enough stock and points for every benchmark order to complete."""
    return SeedData(
        products={"widget": Product(name="Widget", price_cents=1_999, stock=orders * 2)},
        points={"alice": orders * 10},
    )


async def bench_sagas(
    runtime: SagaRuntime, orders: int, concurrency: int, tracing: bool, tag: str
) -> Measurement:
    namespace = Namespace(tag)  # its own catalogue: a deployment is never wiped
    await seed_namespace(runtime.domain, namespace, bench_seed(orders))
    policy = FAST.model_copy(update={"deadline_s": 300.0, "attempt_timeout_s": 30.0})

    async def one(index: int) -> float:
        case = SagaCase(order(f"bench-{index}", items={"widget": 1}, points=1))
        saga_id = namespace.saga_id(f"bench-{index}")
        run = await run_saga(
            runtime, case, policy, saga_id, 600, scenario="bench", namespace=namespace
        )
        if run.outcome.status.value != "COMPLETED":
            raise RuntimeError(f"benchmark saga {run.saga_id} ended {run.outcome.status}")
        return run.duration_ms

    return await measure(
        runtime.variant,
        "saga",
        tracing,
        orders,
        concurrency,
        lambda: gather_limited(orders, concurrency, one),
    )


async def bench_floor(runtime: SagaRuntime, orders: int, concurrency: int) -> Measurement:
    """The bare engine on the variant's own server: no-op activities or no-op handlers.

    Orchestration offers ``floor(index) -> ms`` (one bare workflow, untraced, on its own task
    queue), driven exactly like the real sagas; choreography's floor drives its own batch of
    event chains through the same broker (``choreography.floor.run_floor``).
    """
    floor = getattr(runtime, "floor", None)
    if floor is not None:
        return await measure(
            runtime.variant,
            "floor",
            False,
            orders,
            concurrency,
            lambda: gather_limited(orders, concurrency, floor),
        )
    return await measure(
        runtime.variant,
        "floor",
        False,
        orders,
        concurrency,
        lambda: _nats_floor(runtime, orders, concurrency),
    )


async def _nats_floor(runtime: SagaRuntime, orders: int, concurrency: int) -> list[float]:
    import nats

    from choreography.floor import run_floor

    connection = await nats.connect(runtime.nats_url)  # type: ignore[attr-defined]
    try:
        return [seconds * 1000 for seconds in await run_floor(connection, orders, concurrency)]
    finally:
        await connection.close()


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


RUN_LABELS = {
    ("floor", False): "bare engine",
    ("saga", True): "traced",
    ("saga", False): "untraced",
}
RUN_COLOURS = {"bare engine": "#868e96", "traced": "#4c6ef5", "untraced": "#74c0fc"}


def bench_svg(doc: dict[str, Any]) -> str:
    """Throughput and latency percentiles per variant and run, as one self-contained SVG."""
    rows = [(m, RUN_LABELS[(m["kind"], m["tracing"])]) for m in doc["measurements"]]
    width, label_w, row_h = 900, 230, 22
    top_tp = max((m["throughput"] for m, _ in rows), default=1) or 1
    top_ms = max((m["p99_ms"] for m, _ in rows), default=1) or 1
    half = (width - label_w - 60) / 2
    height = row_h * len(rows) + 60
    svg = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        "font-family='sans-serif' font-size='11'>",
        f"<text x='{label_w}' y='14' font-weight='bold'>throughput (sagas/s)</text>",
        f"<text x='{label_w + half + 40}' y='14' font-weight='bold'>latency p50 / p95 / p99"
        " (ms)</text>",
    ]
    for i, (m, label) in enumerate(rows):
        y = 24 + i * row_h
        colour = RUN_COLOURS[label]
        tp_w = half * m["throughput"] / top_tp
        svg.append(f"<text x='0' y='{y + 13}'>{m['variant']} - {label}</text>")
        svg.append(
            f"<rect x='{label_w}' y='{y}' width='{tp_w:.1f}' height='16' fill='{colour}'/>"
            f"<text x='{label_w + tp_w + 3:.1f}' y='{y + 12}'>{m['throughput']:.1f}</text>"
        )
        x0 = label_w + half + 40
        for key, opacity in (("p99_ms", 0.35), ("p95_ms", 0.6), ("p50_ms", 1.0)):
            w = (half - 120) * m[key] / top_ms
            svg.append(
                f"<rect x='{x0}' y='{y}' width='{w:.1f}' height='16' fill='{colour}' "
                f"fill-opacity='{opacity}'/>"
            )
        svg.append(
            f"<text x='{x0 + (half - 120) * m['p99_ms'] / top_ms + 3:.1f}' y='{y + 12}'>"
            f"{m['p50_ms']:.0f} / {m['p95_ms']:.0f} / {m['p99_ms']:.0f}</text>"
        )
    svg.append("</svg>")
    return "".join(svg)


def bench_markdown(doc: dict[str, Any]) -> str:
    lines = [
        "| variant | run | sagas | concurrency | sagas/s | p50 | p95 | p99 | CPU s | peak MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in doc["measurements"]:
        lines.append(
            f"| {m['variant']} | {RUN_LABELS[(m['kind'], m['tracing'])]} | {m['orders']} "
            f"| {m['concurrency']} | {m['throughput']:.1f} | {m['p50_ms']:.1f} ms "
            f"| {m['p95_ms']:.1f} ms | {m['p99_ms']:.1f} ms | {m['cpu_s']:.1f} "
            f"| {m['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| variant | ratio to floor | target | tracing cost | budget |",
        "|---|---|---|---|---|",
    ]
    for variant, v in doc["verdict"].items():
        met = "met" if v["ratio_met"] else "MISSED"
        cost = "met" if v["tracing_met"] else "MISSED"
        lines.append(
            f"| {variant} | {v['ratio_to_floor']:.2f}x | {v['ratio_target']}x ({met}) "
            f"| {v['tracing_overhead']:.0%} | 15% ({cost}) |"
        )
    return "\n".join(lines) + "\n"
