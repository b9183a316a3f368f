"""The calibration table: what one engine operation costs on this machine, in this run.

A benchmark's ratios say how far each style is from its floor; this table says what the
engines' own operations cost while the run happened, so a saga's CPU per saga can be read in
units of them (a choreography saga is seven publishes, thirteen consume-and-acks and six
transactions; an orchestration saga a workflow and six activities). Each operation runs one
at a time on servers of its own, started like the run's (the same NATS, the Temporal dev
server with the run's dynamic config and database, the run's store), for a few seconds in
all, before the first measured run:

- **NATS publish**: ``js.publish`` of a 256-byte message with a dedup id, awaiting the stream's
  ack (file storage, as the saga stream);
- **consume-and-ack**: a durable pull consumer's ``fetch(1)`` and ``ack()`` of those messages;
- **SQLite / Postgres transaction**: ``store.run`` of an inbox and an outbox insert keyed by a
  saga (the durable floor's transaction); Postgres only when the run's store is Postgres (an
  embedded server takes seconds to initialise);
- **workflow**: an empty workflow started and awaited to its result;
- **activity, remote / local**: a workflow of ten no-op activities, less the empty workflow,
  per activity.

Each row has the wall time per operation and the CPU per operation of this process (the
client, with the Temporal SDK's threads) and of the server, read from the processes' CPU
counters around the batch.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.worker import Worker

from choreography import inbox, outbox
from choreography.broker import NatsBroker
from choreography.bus import Outgoing
from harness.bench.resources import Processes, cpu_delta
from orchestration.bootstrap import DEV_SERVER_CONFIG, WORKER_TUNING
from orchestration.server import TemporalServer
from shared.postgres_server import EmbeddedPostgres
from shared.settings import Settings, StoreKind
from shared.store import Store, StoreFactory, Tx
from shared.store.postgres import postgres_stores
from shared.store.sqlite import sqlite_stores

STREAM = "CALIBRATION"
PAYLOAD = b"x" * 256
ACTIVITIES = 10
"""No-op activities per calibration workflow (their cost is what it adds to an empty one)."""


@dataclass(frozen=True)
class Sizes:
    """How many of each operation: a few seconds in all on a loaded two-core machine."""

    messages: int = 200
    transactions: int = 200
    postgres_transactions: int = 100
    workflows: int = 20
    activity_workflows: int = 4
    warmup: int = 3


@dataclass(frozen=True)
class Operation:
    """One engine operation's cost: wall time and CPU per operation, one at a time."""

    key: str
    label: str
    count: int
    wall_ms: float
    cpu_ms: dict[str, float]
    """CPU per operation by process kind (harness = this process, broker, server, database)."""

    @property
    def cpu_ms_total(self) -> float:
        return sum(self.cpu_ms.values())

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "cpu_ms_total": self.cpu_ms_total}


@dataclass
class Calibration:
    """Every operation measured, the ones left out with why, and how long it all took."""

    operations: list[Operation] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "operations": [op.as_dict() for op in self.operations],
            "skipped": dict(self.skipped),
            "seconds": self.seconds,
        }


LABELS = {
    "nats_publish": "NATS publish (JetStream ack)",
    "nats_consume": "NATS consume-and-ack (pull, one message)",
    "sqlite_tx": "SQLite transaction (store.run: inbox + outbox insert)",
    "postgres_tx": "Postgres transaction (store.run: inbox + outbox insert)",
    "workflow": "Temporal workflow (empty: start to result)",
    "activity_remote": "Temporal activity, remote (no-op)",
    "activity_local": "Temporal activity, local (no-op)",
}
"""Every row of the table, in order."""


async def timed(
    count: int, op: Callable[[int], Awaitable[object]]
) -> tuple[float, dict[str, float]]:
    """Run ``op(0) ... op(count - 1)`` one after the other: wall seconds and CPU by kind."""
    before = Processes.list()
    cpu_before = before.cpu()
    started = time.perf_counter()
    for index in range(count):
        await op(index)
    wall = time.perf_counter() - started
    return wall, cpu_delta(cpu_before, Processes.list().cpu())


def per_op(key: str, count: int, wall_s: float, cpu_s: dict[str, float]) -> Operation:
    """The batch's totals as one operation's cost, in milliseconds."""
    cpu = {kind: 1000 * seconds / count for kind, seconds in cpu_s.items()}
    return Operation(key, LABELS[key], count, 1000 * wall_s / count, cpu)


def less(op: Operation, base: Operation, key: str, parts: int) -> Operation:
    """``op`` minus ``base``, per part: what each of ``parts`` activities added to a workflow."""
    kinds = set(op.cpu_ms) | set(base.cpu_ms)
    cpu = {k: max(0.0, (op.cpu_ms.get(k, 0.0) - base.cpu_ms.get(k, 0.0)) / parts) for k in kinds}
    wall = max(0.0, (op.wall_ms - base.wall_ms) / parts)
    return Operation(key, LABELS[key], op.count * parts, wall, cpu)


# -- NATS ------------------------------------------------------------------------------------


async def nats_rows(folder: Path, sizes: Sizes) -> list[Operation]:
    """Publishes awaiting their acks, then a durable's fetch(1) + ack of each."""
    async with NatsBroker(state_dir=folder / "nats") as broker:
        nc = await nats.connect(broker.url)
        try:
            js = nc.jetstream()
            config = StreamConfig(
                name=STREAM,
                subjects=["calibration.>"],
                retention=RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
            )
            await js.add_stream(config)
            run = uuid.uuid4().hex[:8]

            async def publish(index: int) -> None:
                headers = {"Nats-Msg-Id": f"{run}-{index}"}
                await js.publish(f"calibration.{run}.{index}", PAYLOAD, headers=headers)

            warm = sizes.warmup * 10
            for index in range(warm):
                await publish(-1 - index)
            published = per_op(
                "nats_publish", sizes.messages, *await timed(sizes.messages, publish)
            )
            sub = await js.pull_subscribe(f"calibration.{run}.>", durable=f"calibration-{run}")
            for _ in range(warm):
                (msg,) = await sub.fetch(1, timeout=10)
                await msg.ack()

            async def consume(index: int) -> None:
                (msg,) = await sub.fetch(1, timeout=10)
                await msg.ack()

            consumed = per_op("nats_consume", sizes.messages, *await timed(sizes.messages, consume))
        finally:
            await nc.close()
    return [published, consumed]


# -- stores ----------------------------------------------------------------------------------


async def store_row(key: str, factory: StoreFactory, count: int, warmup: int) -> Operation:
    """``count`` transactions of an inbox and an outbox insert, each for a saga of its own."""
    store: Store = factory("calibration", (*inbox.MIGRATIONS, *outbox.MIGRATIONS))
    await store.open()
    run = uuid.uuid4().hex[:8]
    try:

        async def one(index: int) -> None:
            saga = f"{run}-{index}"
            row = Outgoing(f"calibration.{saga}", PAYLOAD, {}, f"{saga}.out")

            def work(tx: Tx) -> None:
                inbox.record(tx, "calibration", f"{saga}.in", row.subject)
                outbox.put(tx, row)

            await store.run(work, key=saga)

        for index in range(warmup):
            await one(-1 - index)
        return per_op(key, count, *await timed(count, one))
    finally:
        await store.close()


@asynccontextmanager
async def postgres(settings: Settings, folder: Path) -> AsyncIterator[StoreFactory]:
    """The settings' Postgres (a schema of the calibration's own), or an embedded one."""
    prefix = f"calibration_{uuid.uuid4().hex[:6]}_"
    if settings.postgres_url:
        yield postgres_stores(settings.postgres_url, schema_prefix=prefix)
        return
    async with EmbeddedPostgres(state_dir=folder / "postgres") as server:
        yield postgres_stores(server.url, schema_prefix=prefix)


# -- Temporal --------------------------------------------------------------------------------


@activity.defn(name="calibration_noop")
async def noop() -> None:
    """Does nothing: any time spent is Temporal's."""


@workflow.defn(name="Calibration", sandboxed=False)
class CalibrationWorkflow:
    """``steps`` no-op activities in sequence, remote or local (zero: an empty workflow)."""

    @workflow.run
    async def run(self, steps: int, local: bool) -> None:
        options: dict[str, Any] = {
            "start_to_close_timeout": timedelta(seconds=10),
            "retry_policy": RetryPolicy(maximum_attempts=1),
        }
        for _ in range(steps):
            if local:
                await workflow.execute_local_activity(noop, **options)
            else:
                await workflow.execute_activity(noop, **options)


async def temporal_rows(folder: Path, temporal_db: str, sizes: Sizes) -> list[Operation]:
    """Empty workflows, then workflows of no-op activities (remote, then local)."""
    state = folder / "temporal" if temporal_db == "file" else None
    server = TemporalServer(ui=False, dynamic_config=DEV_SERVER_CONFIG, state_dir=state)
    async with server:
        client = await Client.connect(server.address)
        queue = f"calibration-{uuid.uuid4().hex[:8]}"
        worker = Worker(
            client,
            task_queue=queue,
            workflows=[CalibrationWorkflow],
            activities=[noop],
            **WORKER_TUNING,
        )
        async with worker:
            numbers = iter(range(1_000_000))

            def flow(steps: int, local: bool) -> Callable[[int], Awaitable[None]]:
                async def one(index: int) -> None:
                    await client.execute_workflow(
                        CalibrationWorkflow.run,
                        args=[steps, local],
                        id=f"{queue}-{next(numbers)}",
                        task_queue=queue,
                    )

                return one

            for index in range(sizes.warmup):
                await flow(ACTIVITIES, index % 2 == 1)(index)
            empty = per_op(
                "workflow", sizes.workflows, *await timed(sizes.workflows, flow(0, False))
            )
            rows = [empty]
            for key, local in (("activity_remote", False), ("activity_local", True)):
                n = sizes.activity_workflows
                whole = per_op(key, n, *await timed(n, flow(ACTIVITIES, local)))
                rows.append(less(whole, empty, key, ACTIVITIES))
    return rows


# -- the whole table -------------------------------------------------------------------------


async def calibrate(
    settings: Settings,
    *,
    temporal_db: str = "file",
    sizes: Sizes = Sizes(),
    scratch: Path | None = None,
) -> Calibration:
    """Measure every operation on servers of its own; they are stopped and removed after."""
    found = Calibration()
    started = time.perf_counter()
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)  # a bench's scratch may not be made yet
    folder = Path(tempfile.mkdtemp(prefix="saga-compare-calibration-", dir=scratch))
    folder.chmod(0o711)  # an embedded Postgres runs as its own user and must enter it
    try:
        found.operations += await nats_rows(folder, sizes)
        sqlite = sqlite_stores(folder / "sqlite", synchronous=settings.sqlite_synchronous)
        found.operations.append(
            await store_row("sqlite_tx", sqlite, sizes.transactions, sizes.warmup)
        )
        if settings.store is StoreKind.POSTGRES:
            async with postgres(settings, folder) as stores:
                found.operations.append(
                    await store_row(
                        "postgres_tx", stores, sizes.postgres_transactions, sizes.warmup
                    )
                )
        else:
            found.skipped["postgres_tx"] = "the run's store is SQLite (a Postgres run has it)"
        found.operations += await temporal_rows(folder, temporal_db, sizes)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    order = list(LABELS)
    found.operations.sort(key=lambda op: order.index(op.key))
    found.seconds = time.perf_counter() - started
    return found
