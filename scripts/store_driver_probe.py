"""Postgres adapters for the store, A/B: the same step-shaped transactions through each
adapter, in interleaved rounds against one embedded server.

    git archive e82e2dd shared | tar -x -C /tmp/threads     # psycopg, writer threads
    git archive 1b986cb shared | tar -x -C /tmp/psycopg     # psycopg's asyncio API
    .venv/bin/python scripts/store_driver_probe.py --rounds 3 \
        --tree threads=/tmp/threads --tree psycopg-async=/tmp/psycopg --tree asyncpg=.

Each ``--tree LABEL=DIR`` is a source tree whose ``shared.store.postgres.PostgresStore`` is
measured (``.`` is this checkout). Each (round, tree) runs in a fresh process on a fresh
schema: ``--transactions`` writes at ``--concurrency``, each shaped like a saga step
(advisory lock on the saga key, inbox insert, step-log read, a balance update, a step-log
insert, an outbox insert), plus one read per ten writes, after 200 to warm up. It prints
transactions per second, the client process's CPU per transaction and the server's (the
postmaster and its backends, over the run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")
SCHEMA = (
    "CREATE TABLE accounts (id TEXT PRIMARY KEY, balance BIGINT NOT NULL);"
    "CREATE TABLE inbox (consumer TEXT NOT NULL, msg_id TEXT NOT NULL,"
    " PRIMARY KEY (consumer, msg_id));"
    "CREATE TABLE step_log (saga_id TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL,"
    " at DOUBLE PRECISION NOT NULL, PRIMARY KEY (saga_id, step));"
    "CREATE TABLE outbox (id {id}, msg_id TEXT NOT NULL UNIQUE, subject TEXT NOT NULL,"
    " body {blob} NOT NULL, created_at DOUBLE PRECISION NOT NULL, sent_at DOUBLE PRECISION)"
)
ACCOUNTS = 100


def step(saga: str, n: int) -> Callable[[Any], int]:
    """One saga step's transaction, as the participants write them."""

    def work(tx: Any) -> int:
        fresh = tx.execute(
            "INSERT INTO inbox (consumer, msg_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            ("payment", f"{saga}-placed"),
        )
        done = tx.fetchone(
            "SELECT status FROM step_log WHERE saga_id = ? AND step = ?", (saga, "charge")
        )
        if not fresh or done is not None:
            return 0
        tx.execute(
            "UPDATE accounts SET balance = balance - ? WHERE id = ? AND balance >= ?",
            (10, f"acct-{n % ACCOUNTS}", 10),
        )
        tx.execute(
            "INSERT INTO step_log (saga_id, step, status, at) VALUES (?, ?, ?, ?)",
            (saga, "charge", "DONE", time.time()),
        )
        tx.execute(
            "INSERT INTO outbox (msg_id, subject, body, created_at) VALUES (?, ?, ?, ?)",
            (f"{saga}-charged", "saga.payment.charged", b'{"ok": true}' * 20, time.time()),
        )
        return 1

    return work


def seed(tx: Any) -> None:
    tx.executemany(
        "INSERT INTO accounts (id, balance) VALUES (?, ?)",
        [(f"acct-{n}", 10**12) for n in range(ACCOUNTS)],
    )


async def workload(store: Any, prefix: str, transactions: int, concurrency: int) -> int:
    """Run the transactions, ``concurrency`` at a time; returns how many committed a step."""
    sagas = iter(range(transactions))
    done = 0

    async def worker() -> None:
        nonlocal done
        for n in sagas:
            saga = f"{prefix}-{n}"
            committed = await store.run(step(saga, n), key=saga)
            done += committed  # not ``done += await ...``: that reads ``done`` before awaiting
            if n % 10 == 0:
                await store.query("SELECT count(*) AS n FROM step_log WHERE saga_id = ?", (saga,))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


def postgres_cpu_s(port: int) -> float:
    """CPU seconds of the server listening on ``port``: its postmaster and every child (the
    machine is shared; other servers are not counted)."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            argv = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and "-p" in argv and str(port) in argv:
                total = 0.0
                for member in (proc, *proc.children(recursive=True)):
                    with contextlib.suppress(psutil.Error):
                        times = member.cpu_times()
                        total += times.user + times.system
                return total
    raise SystemExit(f"error: no Postgres listening on port {port} found")


def use_source(tree: str) -> None:
    """Import ``shared`` from ``tree`` instead of this checkout (the editable install's finder
    would otherwise answer first)."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in type(f).__module__]
    sys.path.insert(0, tree)


async def one_run(args: argparse.Namespace) -> None:
    from shared.store.base import migrations
    from shared.store.postgres import PostgresStore

    schema = f"probe_{uuid.uuid4().hex[:12]}"
    store = PostgresStore("payment", args.url, migrations("probe", SCHEMA), schema=schema)
    await store.open()
    try:
        await store.run(seed)
        await workload(store, "warm", 200, args.concurrency)  # connections, statement caches
        me = psutil.Process()
        port = int(args.url.rsplit(":", 1)[1].split("/")[0])
        cpu, server, started = me.cpu_times(), postgres_cpu_s(port), time.perf_counter()
        done = await workload(store, "saga", args.transactions, args.concurrency)
        wall = time.perf_counter() - started
        after, server_after = me.cpu_times(), postgres_cpu_s(port)
    finally:
        await store.close()
    client_ms = 1000 * (after.user + after.system - cpu.user - cpu.system) / args.transactions
    server_ms = 1000 * (server_after - server) / args.transactions
    assert done == args.transactions, f"only {done} of {args.transactions} steps committed"
    user_ms = 1000 * (after.user - cpu.user) / args.transactions
    print(
        f"round {args.round} {args.label}: {args.transactions / wall:.0f} tx/s,"
        f" client CPU {client_ms:.3f} ms/tx (user {user_ms:.3f}),"
        f" server CPU {server_ms:.3f} ms/tx",
        flush=True,
    )


def interleave(args: argparse.Namespace) -> None:
    """Every tree once per round, in one window, against one embedded server."""
    from shared.postgres_server import EmbeddedPostgres

    trees = [tree.split("=", 1) for tree in args.tree]

    async def serve() -> None:
        state = Path(tempfile.mkdtemp(prefix="saga-driver-probe-"))
        state.chmod(0o711)  # the embedded Postgres' system user must enter it
        try:
            await rounds(state)
        finally:
            shutil.rmtree(state, ignore_errors=True)

    async def rounds(state: Path) -> None:
        async with EmbeddedPostgres(state_dir=state / "postgres") as server:
            for round_ in range(1, args.rounds + 1):
                for label, tree in trees:
                    command = [
                        sys.executable, __file__, "--one", label, "--url", server.url,
                        "--source", str(Path(tree).resolve()), "--round", str(round_),
                        "--transactions", str(args.transactions),
                        "--concurrency", str(args.concurrency),
                    ]  # fmt: skip
                    await asyncio.to_thread(subprocess.run, command, check=True)

    asyncio.run(serve())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], metavar="LABEL=DIR")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--transactions", "-n", type=int, default=3000)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--round", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        use_source(args.source)
        args.label = args.one
        asyncio.run(one_run(args))
        return
    if not args.tree or any("=" not in tree for tree in args.tree):
        parser.error("--tree LABEL=DIR: at least one source tree to measure")
    interleave(args)


if __name__ == "__main__":
    main()
