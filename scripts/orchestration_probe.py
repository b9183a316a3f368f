"""Where the orchestration saga's cost over its floor goes: CPU by process, history by event.

    .venv/bin/python scripts/orchestration_probe.py --activities local --rounds 3 \\
        --settings shipped,result-wait,untraced --out probe.jsonl

Each (round, setting) is a fresh process that opens one orchestration session (embedded dev
server, the worker in-process, SQLite stores, ``--activities``), applies the setting, warms up
with 20 sagas and 20 floor sagas, then runs ``--orders`` sagas and as many floor sagas (the
saga workflow with no-op activities, ``harness/bench/floors/orchestration.py``) at
``--concurrency``, in an order that alternates between rounds. Per run it prints one JSON line:
sagas/s, CPU ms per saga of this process (client, worker, activities) and of the Temporal
server, the 1-minute load at its start, and the shape of the histories of the run's first 20
workflows (events per workflow by type, workflow tasks, history bytes). The settings are what
the saga could change (each measured on the saga and its floor alike, where it applies):

- ``shipped``: as the runtime runs;
- ``result-wait``: the harness waits for a saga's end with ``handle.result()`` (a long poll on
  the workflow's close) instead of the ``settled`` update, which the runtime needs for a saga
  that stays open for an operator;
- ``untraced``: the span pipeline off (the benchmark's untraced run);
- ``eager-start``: ``start_workflow(request_eager_start=True)`` instead of update-with-start
  (the first workflow task comes back in the start's answer; a duplicate order is no longer
  reported at once, so this is a measurement, not a candidate as it stands);
- ``no-eager-activities``: the worker's ``disable_eager_activity_execution=True``;
- ``cache-2000``: ``max_cached_workflows=2000`` (default 1000);
- ``sticky-10s``: ``sticky_queue_schedule_to_start_timeout`` of 10 s (the SDK's default)
  instead of the runtime's 2 s: a workflow task that waits longer than that on the worker's
  sticky queue times out and goes to the shared queue, where a worker replays the whole
  history (``workflow_tasks_timed_out`` counts them over the sampled histories).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil

SETTINGS = (
    "shipped",
    "result-wait",
    "untraced",
    "eager-start",
    "no-eager-activities",
    "cache-2000",
    "sticky-10s",
)
HISTORIES = 20


def servers_cpu_s(me: psutil.Process) -> float:
    total = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def apply(setting: str) -> None:
    """Patch this process for ``setting`` before the session opens (see the docstring)."""
    from orchestration import bootstrap, saga_client

    if setting == "no-eager-activities":
        bootstrap.WORKER_TUNING = {
            **bootstrap.WORKER_TUNING,
            "disable_eager_activity_execution": True,
        }
    elif setting == "cache-2000":
        bootstrap.WORKER_TUNING = {**bootstrap.WORKER_TUNING, "max_cached_workflows": 2000}
    elif setting == "sticky-10s":
        sticky = {"sticky_queue_schedule_to_start_timeout": timedelta(seconds=10)}
        bootstrap.WORKER_TUNING = {**bootstrap.WORKER_TUNING, **sticky}
    elif setting == "result-wait":

        async def result(handle: Any) -> Any:
            return await handle.result()

        saga_client.settled = result
    elif setting == "eager-start":
        from orchestration import visibility
        from orchestration.workflows import OrderSagaWorkflow

        async def start(client: Any, task_queue: str, saga: Any) -> None:
            # saga_client.start's options, but a plain eager start instead of update-with-start.
            await client.start_workflow(
                OrderSagaWorkflow.run,
                saga,
                id=saga.saga_id,
                task_queue=task_queue,
                search_attributes=visibility.start_attributes(saga.order),
                memo={visibility.DEFINITION_MEMO: saga.definition.model_dump()},
                static_summary=visibility.start_summary(saga.order),
                static_details=visibility.start_details(saga.order, saga.saga),
                request_eager_start=True,
            )

        saga_client.start = start


async def shape(client: Any, ids: list[str]) -> dict[str, Any]:
    """Events per workflow by type (medians over the workflows, a type a history lacks
    counting 0), workflow tasks, timed-out workflow tasks in all, and history bytes."""
    from temporalio.api.enums.v1 import EventType

    counted: list[Counter[str]] = []
    sizes = []
    for workflow_id in ids[:HISTORIES]:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        counted.append(
            Counter(
                EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").lower()
                for event in history.events
            )
        )
        sizes.append(len(history.to_json()))
    kinds = sorted({kind for counts in counted for kind in counts})
    return {
        "histories": len(counted),
        "events": statistics.median(sum(counts.values()) for counts in counted),
        "events_by_type": {k: statistics.median(c.get(k, 0) for c in counted) for k in kinds},
        "workflow_tasks": statistics.median(c.get("workflow_task_completed", 0) for c in counted),
        "workflow_tasks_timed_out": sum(c.get("workflow_task_timed_out", 0) for c in counted),
        "history_bytes": statistics.median(sizes),
    }


async def timed(args: argparse.Namespace, run: str, drive: Any, n: int) -> dict[str, Any]:
    me = psutil.Process()
    load_1m = os.getloadavg()[0]
    before, servers, started = me.cpu_times(), servers_cpu_s(me), time.perf_counter()
    await drive()
    after, wall = me.cpu_times(), time.perf_counter() - started
    servers = servers_cpu_s(me) - servers
    return {
        "setting": args.setting,
        "round": args.round,
        "activities": args.activities,
        "run": run,
        "orders": n,
        "concurrency": args.concurrency,
        "load_1m": round(load_1m, 2),
        "sagas_per_s": round(n / wall, 2),
        "harness_ms_per_saga": round(
            1000 * (after.user + after.system - before.user - before.system) / n, 2
        ),
        "server_ms_per_saga": round(1000 * servers / n, 2),
    }


async def one_process(args: argparse.Namespace) -> None:
    apply(args.setting)
    from harness.bench.floors.orchestration import OrchestrationFloor
    from harness.bench.measure import CLOSED, Load
    from harness.bench.workload import SagaDriver, bench_order, bench_policy
    from harness.compare.runner import new_run_tag
    from harness.session import open_session
    from shared.settings import Settings, StoreKind

    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-oprobe-"))
    options: dict[str, dict[str, Any]] = {
        "orchestration": {"server_state_dir": scratch / "temporal", "activities": args.activities}
    }
    n, c = args.orders, args.concurrency
    try:
        async with open_session(
            ["orchestration"], scratch / "state", scratch / "traces.jsonl",
            settings=Settings(store=StoreKind.SQLITE), inject=False, options=options,
        ) as session:  # fmt: skip
            runtime: Any = session.runtimes["orchestration"]
            session.tracing.set_enabled(args.setting != "untraced")
            floor = OrchestrationFloor(
                runtime.client, bench_order("floor"), bench_policy(), args.activities
            )
            async with floor:
                warm = SagaDriver(runtime, new_run_tag(), 600)
                await warm.prepare(20)
                await Load(CLOSED, orders=20, concurrency=5).drive(warm)
                await asyncio.gather(*(floor.once(i) for i in range(20)))
                for run in args.runs:
                    if run == "floor":

                        async def floors() -> None:
                            gate = asyncio.Semaphore(c)

                            async def limited(i: int) -> None:
                                async with gate:
                                    await floor.once(i)

                            await asyncio.gather(*(limited(i) for i in range(n)))

                        row = await timed(args, run, floors, n)
                        # The floor numbers its workflows in start order; 0-19 warmed up.
                        ids = [f"{floor.task_queue}-{20 + i}" for i in range(min(n, HISTORIES))]
                    else:
                        driver = SagaDriver(runtime, new_run_tag(), 600)
                        await driver.prepare(n)
                        load = Load(CLOSED, orders=n, concurrency=c)
                        row = await timed(args, run, functools.partial(load.drive, driver), n)
                        ids = sorted(driver.saga_id(i) for i in driver.ended.indices())
                    row |= await shape(runtime.client, ids)
                    print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def interleave(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for round_ in range(1, args.rounds + 1):
        settings = args.settings if round_ % 2 else list(reversed(args.settings))
        runs = args.runs if round_ % 2 else list(reversed(args.runs))
        for setting in settings:
            command = [
                sys.executable, __file__, "--one", setting, "--round", str(round_),
                "--activities", args.activities, "--orders", str(args.orders),
                "--concurrency", str(args.concurrency), "--runs", ",".join(runs),
            ]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            for line in done.stdout.splitlines():
                if line.startswith("{"):
                    print(line, flush=True)
                    rows.append(json.loads(line))
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Medians per setting and run, and each setting's saga over its floor."""
    lines = [
        "| setting | run | sagas/s | harness ms/saga | server ms/saga | events | workflow tasks"
        " | timed-out tasks (of the sampled histories) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, run in dict.fromkeys((r["setting"], r["run"]) for r in rows):
        mine = [r for r in rows if (r["setting"], r["run"]) == (setting, run)]

        def med(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return float(statistics.median(r[key] for r in mine))

        lines.append(
            f"| {setting} | {run} | {med('sagas_per_s'):.1f} | {med('harness_ms_per_saga'):.1f}"
            f" | {med('server_ms_per_saga'):.1f} | {med('events'):.0f}"
            f" | {med('workflow_tasks'):.0f} | {med('workflow_tasks_timed_out'):.0f} of"
            f" {med('histories'):.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", choices=("remote", "local"), default="local")
    parser.add_argument("--settings", default="shipped", help=f"comma list of {SETTINGS}")
    parser.add_argument("--runs", default="saga,floor")
    parser.add_argument("--orders", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, help="also append the JSON lines here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.settings = [s for s in args.settings.split(",") if s]
    args.runs = [r for r in args.runs.split(",") if r]
    if any(s not in SETTINGS for s in args.settings):
        parser.error(f"--settings: each of {', '.join(SETTINGS)}")
    if any(r not in ("saga", "floor") for r in args.runs):
        parser.error("--runs: saga and/or floor")
    if args.one:
        args.setting = args.one
        asyncio.run(one_process(args))
        return
    rows = interleave(args)
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    print(summary(rows))


if __name__ == "__main__":
    main()
