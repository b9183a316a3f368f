"""What the SQLite store's thread hops cost the choreography: the same closed run with every
transaction on the store's threads (as shipped) or on the event loop's own thread.

    .venv/bin/python scripts/store_hop_probe.py --mode threads --rounds 3
    .venv/bin/python scripts/store_hop_probe.py --mode loop --rounds 3

A probe, not a store: ``--mode loop`` replaces `SqliteStore.run` and `SqliteStore.read` in
this process with calls that run the same transaction synchronously where they are awaited.
That gives up what the threads are for (see docs/stores.md) — a write blocked by another
process's lock would block the event loop — so it only measures what the hops cost. Prints,
per round, traced sagas per second and the process's CPU per saga split into user and system
time (the hops show as system time: futex and self-pipe wake-ups between the threads).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

from harness.bench.measure import CLOSED, Load
from harness.bench.workload import SagaDriver
from harness.compare.runner import new_run_tag
from harness.session import open_session
from shared.settings import Settings, StoreKind
from shared.store import Tx
from shared.store.sqlite import SqliteStore

T = TypeVar("T")


def on_the_loop() -> None:
    """Run every SQLite transaction where it is awaited (the probe's only change)."""

    async def run(self: SqliteStore, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        return self._write(work)

    async def read(self: SqliteStore, work: Callable[[Tx], T]) -> T:
        return self._read(work)

    setattr(SqliteStore, "run", run)  # noqa: B010 -- a probe patches the class on purpose
    setattr(SqliteStore, "read", read)  # noqa: B010


async def probe(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-hops-"))
    options: dict[str, Any] = {"broker_state_dir": scratch / "nats"}
    try:
        async with open_session(
            ["choreography"], scratch / "state", scratch / "traces.jsonl",
            settings=Settings(store=StoreKind.SQLITE), inject=False,
            options={"choreography": options},
        ) as session:  # fmt: skip
            runtime = session.runtimes["choreography"]
            warm = SagaDriver(runtime, new_run_tag(), 600)
            await warm.prepare(20)
            await Load(CLOSED, orders=20, concurrency=5).drive(warm)
            me = psutil.Process()
            for round_ in range(1, args.rounds + 1):
                driver = SagaDriver(runtime, new_run_tag(), 600)
                await driver.prepare(args.orders)
                before, started = me.cpu_times(), time.perf_counter()
                await Load(CLOSED, orders=args.orders, concurrency=args.concurrency).drive(driver)
                after, wall = me.cpu_times(), time.perf_counter() - started
                user = 1000 * (after.user - before.user) / args.orders
                system = 1000 * (after.system - before.system) / args.orders
                print(
                    f"{args.mode} round {round_}: {args.orders / wall:.1f} sagas/s, "
                    f"CPU {user + system:.1f} ms/saga (user {user:.1f}, system {system:.1f})",
                    flush=True,
                )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("threads", "loop"), required=True)
    parser.add_argument("--orders", "-n", type=int, default=300)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.mode == "loop":
        on_the_loop()
    asyncio.run(probe(args))


if __name__ == "__main__":
    main()
