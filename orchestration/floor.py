"""The bare-Temporal floor: a workflow of no-op activities, timed end to end from the client.

What Temporal itself costs per saga with no business work at all; the harness benchmark
reports it beside the real saga. Run `python -m orchestration.floor` for a quick figure on an
embedded dev server (see docs/temporal-latency.md for what moves it).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

FLOOR_STEPS = 4
SAGA_ACTIVITIES = 6
"""Activities a happy-path OrderSagaWorkflow runs (place_order and five steps): the benchmark's
floor has the same shape, so its ratio isolates domain work, stores and tracing."""


@activity.defn(name="floor_noop")
async def noop() -> None:
    """Does nothing: any time spent is Temporal's."""


@workflow.defn(name="FloorSaga", sandboxed=False)
class FloorWorkflow:
    """``steps`` no-op activities in sequence, like the saga's four forward steps."""

    @workflow.run
    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await workflow.execute_activity(
                noop,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )


def floor_worker(client: Client, task_queue: str, **options: Any) -> Worker:
    """A worker for the floor workflow; ``options`` go to `Worker` (tuning experiments)."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[FloorWorkflow],
        activities=[noop],
        **options,
    )


async def run_floor(
    client: Client,
    task_queue: str,
    n: int,
    concurrency: int,
    *,
    steps: int = FLOOR_STEPS,
    worker: bool = True,
    worker_options: Mapping[str, Any] | None = None,
) -> list[float]:
    """Run ``n`` floor workflows, ``concurrency`` at a time; each one's latency in seconds.

    With ``worker`` a worker is run in-process on ``task_queue`` for the duration; otherwise
    one must already poll it.
    """
    if not worker:
        return await _drive(client, task_queue, n, concurrency, steps)
    async with floor_worker(client, task_queue, **dict(worker_options or {})):
        return await _drive(client, task_queue, n, concurrency, steps)


async def _drive(
    client: Client, task_queue: str, n: int, concurrency: int, steps: int
) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    run_tag = uuid.uuid4().hex[:8]

    async def one(index: int) -> float:
        async with gate:
            return await floor_once(client, task_queue, f"floor-{run_tag}-{index}", steps)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def floor_once(
    client: Client, task_queue: str, workflow_id: str, steps: int = FLOOR_STEPS
) -> float:
    """One floor workflow, start to result, in seconds."""
    started = time.perf_counter()
    await client.execute_workflow(FloorWorkflow.run, steps, id=workflow_id, task_queue=task_queue)
    return time.perf_counter() - started


def summary(latencies: list[float]) -> str:
    """p50 / p90 / max in milliseconds, for a one-line report."""
    ms = sorted(x * 1000 for x in latencies)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f}ms p90={p90:.1f}ms max={ms[-1]:.1f}ms"


def throughput(latencies: list[float], elapsed: float) -> str:
    """Workflows per second over a whole batch, for a one-line report."""
    return f"{len(latencies) / elapsed:.1f} workflows/s"


async def _main(args: argparse.Namespace) -> None:
    from orchestration.runtime import DEV_SERVER_CONFIG
    from orchestration.server import SQLITE_PRAGMAS, TemporalServer

    if args.address is not None:
        client = await Client.connect(args.address)
        await _report(client, f"floor-{uuid.uuid4().hex[:6]}", args.n, args.concurrency)
        return
    config = {} if args.stock else DEV_SERVER_CONFIG
    pragmas = {} if args.no_pragmas else SQLITE_PRAGMAS
    server = TemporalServer(
        ui=False, dynamic_config=config, state_dir=args.state_dir, sqlite_pragmas=pragmas
    )
    async with server:
        client = await Client.connect(server.address)
        await run_floor(client, "floor-warmup", 5, 1)
        await _report(client, "floor", args.n, args.concurrency)


async def _report(client: Client, task_queue: str, n: int, concurrency: int) -> None:
    started = time.perf_counter()
    latencies = await run_floor(client, task_queue, n, concurrency)
    elapsed = time.perf_counter() - started
    print(f"{summary(latencies)} {throughput(latencies, elapsed)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="workflows to run")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--address", help="an existing server instead of an embedded one")
    parser.add_argument(
        "--stock", action="store_true", help="embedded server without our dynamic config"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep the embedded server's state in a SQLite file here"
    )
    parser.add_argument(
        "--no-pragmas", action="store_true", help="that SQLite file with its default pragmas"
    )
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
