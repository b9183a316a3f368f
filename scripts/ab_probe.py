"""A/B between source trees, interleaved: one style's closed run (or its floor) per tree and
round, each in a fresh process, so a change's before and after share one window of a shared
machine.

    git archive b060fda shared choreography orchestration harness monitor | tar -x -C /tmp/a
    git archive HEAD shared choreography orchestration harness monitor | tar -x -C /tmp/b
    .venv/bin/python scripts/ab_probe.py --variant choreography --runs traced,untraced \\
        --rounds 3 --tree before=/tmp/a --tree after=/tmp/b --out ab.jsonl

Each (round, tree) process imports the project from that tree, opens one session of the style
(embedded servers, the services or the worker in-process, ``--store``), warms up with 20
sagas, then for each of ``--runs`` (``traced``, ``untraced``, ``floor``, ``durable``) runs
``--orders`` at ``--concurrency`` and prints one JSON line: sagas/s, CPU ms per saga of this
process (user, system) and of its servers, and the 1-minute load when it started. The
parent prints every line as it comes, then a table of medians per tree and run. Trees and the
order of the runs inside a process alternate between rounds. ``--gc`` adds to each line the
CPU the process's thread spent in the garbage collector per saga and its collections by
generation (a callback around every collection).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

RUNS = ("traced", "untraced", "floor", "durable")


class CollectorTime:
    """CPU of the collecting thread inside the garbage collector, and collections by
    generation, since ``reset``."""

    def __init__(self) -> None:
        self.cpu_s = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time()
            return
        self.cpu_s += time.thread_time() - self._started
        self.collections[info["generation"]] += 1

    def reset(self) -> None:
        self.cpu_s, self.collections = 0.0, [0, 0, 0]


COLLECTOR = CollectorTime()


def use_source(tree: str) -> None:
    """Import the project from ``tree`` (the editable install's finder would answer first)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
    sys.path.insert(0, tree)


def servers_cpu_s(me: psutil.Process) -> float:
    total = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


async def timed(args: argparse.Namespace, label: str, run: str, load: Any, driver: Any) -> None:
    me = psutil.Process()
    load_1m = os.getloadavg()[0]
    COLLECTOR.reset()
    before, servers, started = me.cpu_times(), servers_cpu_s(me), time.perf_counter()
    await load.drive(driver)
    after, wall = me.cpu_times(), time.perf_counter() - started
    servers = servers_cpu_s(me) - servers
    n = args.orders
    row = {
        "tree": label,
        "round": args.round,
        "variant": args.variant,
        "activities": args.activities,
        "store": args.store,
        "run": run,
        "orders": n,
        "concurrency": args.concurrency,
        "load_1m": round(load_1m, 2),
        "sagas_per_s": round(n / wall, 2),
        "cpu_ms_per_saga": round(
            1000 * (after.user + after.system - before.user - before.system) / n, 2
        ),
        "user_ms_per_saga": round(1000 * (after.user - before.user) / n, 2),
        "system_ms_per_saga": round(1000 * (after.system - before.system) / n, 2),
        "servers_ms_per_saga": round(1000 * servers / n, 2),
    }
    if args.gc:
        row["gc_ms_per_saga"] = round(1000 * COLLECTOR.cpu_s / n, 2)
        row["gc_collections"] = list(COLLECTOR.collections)
    print(json.dumps(row), flush=True)


async def one_process(args: argparse.Namespace) -> None:
    from harness.bench.measure import CLOSED, Load
    from harness.bench.workload import DURABLE_FLOOR, FLOOR, SagaDriver, open_floor
    from harness.compare.runner import new_run_tag
    from harness.session import open_session
    from shared.settings import Settings, StoreKind

    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-ab-"))
    scratch.chmod(0o711)  # the embedded Postgres' system user must enter it
    options: dict[str, dict[str, Any]] = {
        "choreography": {"broker_state_dir": scratch / "nats"},
        "orchestration": {"server_state_dir": scratch / "temporal"},
    }
    if args.variant == "orchestration":
        options["orchestration"]["activities"] = args.activities
    load = Load(CLOSED, orders=args.orders, concurrency=args.concurrency)
    try:
        async with open_session(
            [args.variant], scratch / "state", scratch / "traces.jsonl",
            settings=Settings(store=StoreKind(args.store)), inject=False, options=options,
        ) as session:  # fmt: skip
            runtime = session.runtimes[args.variant]
            warm = SagaDriver(runtime, new_run_tag(), 600)
            await warm.prepare(20)
            await Load(CLOSED, orders=20, concurrency=5).drive(warm)
            for run in args.runs:
                if run in ("floor", "durable"):
                    kind = FLOOR if run == "floor" else DURABLE_FLOOR
                    session.tracing.set_enabled(False)
                    async with open_floor(runtime, kind, session.stores) as floor:
                        await Load(CLOSED, orders=20, concurrency=5).drive(floor)
                        await timed(args, args.label, run, load, floor)
                    session.tracing.set_enabled(True)
                    continue
                session.tracing.set_enabled(run == "traced")
                driver = SagaDriver(runtime, new_run_tag(), 600)
                await driver.prepare(args.orders)
                await timed(args, args.label, run, load, driver)
                session.tracing.set_enabled(True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def interleave(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    trees = [tree.split("=", 1) for tree in args.tree]
    for round_ in range(1, args.rounds + 1):
        order = trees if round_ % 2 else list(reversed(trees))
        runs = args.runs if round_ % 2 else list(reversed(args.runs))
        for label, tree in order:
            command = [
                sys.executable, __file__, "--one", label, "--source", str(Path(tree).resolve()),
                "--round", str(round_), "--variant", args.variant, "--activities",
                args.activities, "--store", args.store, "--orders", str(args.orders),
                "--concurrency", str(args.concurrency), "--runs", ",".join(runs),
                *(["--gc"] if args.gc else []),
            ]  # fmt: skip
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            for line in done.stdout.splitlines():
                if line.startswith("{"):
                    print(line, flush=True)
                    rows.append(json.loads(line))
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Medians per tree and run, and each tree's tracing cost (traced against untraced)."""
    lines = [
        "| tree | run | sagas/s (each run) | median | CPU ms/saga (each run) | median |",
        "|---|---|---|---|---|---|",
    ]
    keys = dict.fromkeys((r["tree"], r["run"]) for r in rows)
    for tree, run in keys:
        mine = [r for r in rows if (r["tree"], r["run"]) == (tree, run)]
        rates = [r["sagas_per_s"] for r in mine]
        cpus = [r["cpu_ms_per_saga"] + r["servers_ms_per_saga"] for r in mine]
        lines.append(
            f"| {tree} | {run} | {', '.join(f'{x:.1f}' for x in rates)} "
            f"| {statistics.median(rates):.1f} | {', '.join(f'{x:.1f}' for x in cpus)} "
            f"| {statistics.median(cpus):.1f} |"
        )
    for tree in dict.fromkeys(r["tree"] for r in rows):
        costs, cpu_costs, deltas = [], [], []
        for round_ in dict.fromkeys(r["round"] for r in rows):
            mine = [r for r in rows if r["tree"] == tree and r["round"] == round_]
            # --runs traced,untraced,traced,untraced: the i-th traced run with the i-th untraced
            runs = [[r for r in mine if r["run"] == run] for run in ("traced", "untraced")]
            for traced, untraced in zip(*runs, strict=False):
                costs.append(1 - traced["sagas_per_s"] / untraced["sagas_per_s"])
                total = [
                    p["cpu_ms_per_saga"] + p["servers_ms_per_saga"] for p in (traced, untraced)
                ]
                cpu_costs.append(total[0] / total[1] - 1)
                deltas.append(traced["cpu_ms_per_saga"] - untraced["cpu_ms_per_saga"])
        if costs:
            lines.append(
                f"\n{tree}: tracing costs {', '.join(f'{c:+.0%}' for c in costs)} of sagas/s "
                f"(median {statistics.median(costs):+.0%}); CPU per saga "
                f"{', '.join(f'{c:+.0%}' for c in cpu_costs)} (median "
                f"{statistics.median(cpu_costs):+.0%}); this process's CPU traced minus "
                f"untraced {', '.join(f'{d:.1f}' for d in deltas)} ms per saga (median "
                f"{statistics.median(deltas):.1f})"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--variant", choices=("choreography", "orchestration"), required=True)
    parser.add_argument("--activities", choices=("remote", "local"), default="remote")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", default="traced,untraced", help=f"comma list of {RUNS}")
    parser.add_argument("--orders", "-n", type=int, default=300)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also append the JSON lines here")
    parser.add_argument("--gc", action="store_true", help="also time the garbage collector")
    parser.add_argument("--summary-of", type=Path, help="only print the summary of these lines")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.runs = [run for run in args.runs.split(",") if run]
    if any(run not in RUNS for run in args.runs):
        parser.error(f"--runs: each of {', '.join(RUNS)}")
    if "durable" in args.runs and args.variant != "choreography":
        parser.error("--runs durable: only the choreography has a durable floor")
    if args.one:
        use_source(args.source)
        args.label = args.one
        if args.gc:
            gc.callbacks.append(COLLECTOR)
        asyncio.run(one_process(args))
        return
    if args.summary_of is not None:
        lines = args.summary_of.read_text(encoding="utf-8").splitlines()
        print(summary([json.loads(line) for line in lines if line.startswith("{")]))
        return
    if not args.tree or any("=" not in tree for tree in args.tree):
        parser.error("--tree LABEL=DIR: at least one source tree to measure")
    rows = interleave(args)
    if args.out is not None:
        with args.out.open("a", encoding="utf-8") as out:
            out.writelines(json.dumps(row) + "\n" for row in rows)
    print(summary(rows))


if __name__ == "__main__":
    main()
