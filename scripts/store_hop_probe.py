"""The choreography's closed run, A/B between source trees: what a store change does to its
throughput and CPU per saga, in interleaved rounds.

    git archive e82e2dd shared choreography orchestration harness monitor | tar -x -C /tmp/a
    git archive HEAD shared choreography orchestration harness monitor | tar -x -C /tmp/b
    .venv/bin/python scripts/store_hop_probe.py --store sqlite --rounds 3 \\
        --tree before=/tmp/a --tree after=/tmp/b

Each (round, tree) runs in a fresh process that imports the project from that tree: one
choreography session (embedded NATS, the services in-process, the store ``--store`` names; an
embedded Postgres for ``postgres``), 20 sagas to warm up, then ``--orders`` traced sagas at
``--concurrency``. It prints sagas per second and CPU per saga: the probe process's (user and
system; thread hand-offs show as system time) and its servers' (NATS, Postgres), and how
many transactions the store ran again under its retry rule (trees that log retries).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil


def use_source(tree: str) -> None:
    """Import the project from ``tree`` instead of this checkout (the editable install's
    finder would otherwise answer first)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
    sys.path.insert(0, tree)


class Retries(logging.Handler):
    """Counts the store's retry log lines (logger ``shared.store``; trees that log them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def servers_cpu_s(me: psutil.Process) -> float:
    total = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def session_options(open_session: Any, options: dict[str, Any]) -> dict[str, Any]:
    """The runtime options as the tree's `open_session` takes them: since the seams landed
    (0aba396) as ``options=`` with no fault injector; before, as keyword per variant."""
    if "options" in inspect.signature(open_session).parameters:
        return {"options": {"choreography": options}, "inject": False}
    return {"choreography": options}


async def one_round(args: argparse.Namespace) -> None:
    from harness.bench.measure import CLOSED, Load
    from harness.bench.workload import SagaDriver
    from harness.compare.runner import new_run_tag
    from harness.session import open_session
    from shared.settings import Settings, StoreKind

    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-hops-"))
    scratch.chmod(0o711)  # the embedded Postgres' system user must enter it
    options: dict[str, Any] = {"broker_state_dir": scratch / "nats"}
    settings = Settings(store=StoreKind(args.store))
    retries = Retries()
    logging.getLogger("shared.store").addHandler(retries)
    logging.getLogger("shared.store").setLevel(logging.INFO)
    try:
        async with open_session(
            ["choreography"], scratch / "state", scratch / "traces.jsonl",
            settings=settings, **session_options(open_session, options),
        ) as session:  # fmt: skip
            runtime = session.runtimes["choreography"]
            warm = SagaDriver(runtime, new_run_tag(), 600)
            await warm.prepare(20)
            await Load(CLOSED, orders=20, concurrency=5).drive(warm)
            me = psutil.Process()
            driver = SagaDriver(runtime, new_run_tag(), 600)
            await driver.prepare(args.orders)
            retries.count = 0
            before, servers, started = me.cpu_times(), servers_cpu_s(me), time.perf_counter()
            await Load(CLOSED, orders=args.orders, concurrency=args.concurrency).drive(driver)
            after, wall = me.cpu_times(), time.perf_counter() - started
            servers = servers_cpu_s(me) - servers
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    user = 1000 * (after.user - before.user) / args.orders
    system = 1000 * (after.system - before.system) / args.orders
    print(
        f"round {args.round} {args.label} ({args.store}): {args.orders / wall:.1f} sagas/s,"
        f" CPU {user + system:.1f} ms/saga (user {user:.1f}, system {system:.1f}),"
        f" servers {1000 * servers / args.orders:.1f} ms/saga, store retries {retries.count}",
        flush=True,
    )


def interleave(args: argparse.Namespace) -> None:
    for round_ in range(1, args.rounds + 1):
        for label, tree in (tree.split("=", 1) for tree in args.tree):
            command = [
                sys.executable, __file__, "--one", label, "--source", str(Path(tree).resolve()),
                "--round", str(round_), "--store", args.store, "--orders", str(args.orders),
                "--concurrency", str(args.concurrency),
            ]  # fmt: skip
            subprocess.run(command, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--orders", "-n", type=int, default=300)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        use_source(args.source)
        args.label = args.one
        asyncio.run(one_round(args))
        return
    if not args.tree or any("=" not in tree for tree in args.tree):
        parser.error("--tree LABEL=DIR: at least one source tree to measure")
    interleave(args)


if __name__ == "__main__":
    main()
