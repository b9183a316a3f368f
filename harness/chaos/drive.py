"""Running a chaos plan on one variant: orders at a steady rate, kills on schedule, outcomes.

Each order is submitted at ``start + index / rate`` through the front door, retried until the
deployment accepts it (a broker or server being down is not the order's fault), then watched
until it ends or the run's bound passes. Each kill asks the supervisor to SIGKILL the target
process and hold it down for the planned downtime; the moment it is ready again is recorded.
A fault-free run of the same orders at a bounded concurrency comes first when asked: its
outcomes are the reference and its throughput the variant's measured capacity.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from harness.chaos.plan import POLICY, ChaosOrder, Kill
from harness.compare.namespace import Namespace, seed_namespace
from harness.deploy import control
from harness.deploy.control import ControlAddress
from shared.contracts import BusinessState, SagaOutcome
from shared.errors import InvalidOrder
from shared.faults.sources import PlanBoard
from shared.runtime import SagaRuntime, SagaStuck
from shared.seed import SeedData

log = logging.getLogger("saga-compare.chaos")

RETRY_S = 0.5


@dataclass
class SagaRecord:
    """One order of the run: when it was due, accepted and observed ending, and how."""

    order: ChaosOrder
    saga_id: str
    due_at: float
    submitted_at: float | None = None
    ended_at: float | None = None
    outcome: SagaOutcome | None = None
    submit_errors: int = 0

    @property
    def latency_s(self) -> float | None:
        if self.ended_at is None or self.outcome is None or not self.outcome.status.terminal:
            return None
        return self.ended_at - self.due_at


@dataclass
class KillRecord:
    """One kill as it happened: what was named, what process it hit, when it was back."""

    kill: Kill
    target: str
    pid: int | None = None
    killed_at: float | None = None
    back_at: float | None = None


@dataclass
class VariantRun:
    """A variant's run under fire (or fault-free), everything the report is made from."""

    variant: str
    namespace: Namespace
    started_at: float
    rate: float
    sagas: list[SagaRecord]
    kills: list[KillRecord] = field(default_factory=list)
    finished_at: float = 0.0
    state: BusinessState | None = None
    restarts: dict[str, int] = field(default_factory=dict)
    """Restarts per process kind during the run (kills and crash points)."""


Submit = Callable[..., Awaitable[None]]


async def submit(
    runtime: SagaRuntime, plans: PlanBoard, record: SagaRecord, namespace: Namespace, until: float
) -> None:
    """Hand the order to the deployment, retrying while it cannot take it; its faults go to
    the deployment's injector first (out of band)."""
    case = record.order.case
    placed = namespace.order(case.order)
    plans.install(record.saga_id, case.faults.resolve(runtime.domain.saga))
    start: Submit = getattr(runtime, "submit", runtime.start_saga)
    while True:
        try:
            await start(record.saga_id, placed, POLICY)
            record.submitted_at = time.time()
            return
        except InvalidOrder:
            raise
        except Exception as error:
            record.submit_errors += 1
            if time.time() >= until:
                log.warning("saga %s never accepted: %s", record.saga_id, error)
                return
            log.debug("submit %s: %s", record.saga_id, error)
            await asyncio.sleep(RETRY_S)


async def watch(runtime: SagaRuntime, record: SagaRecord, until: float) -> None:
    """Wait for the saga's end; an error while a server is down is retried, not fatal."""
    while True:
        remaining = until - time.time()
        try:
            record.outcome = await runtime.wait(record.saga_id, max(remaining, 0.1))
            record.ended_at = time.time()
            return
        except SagaStuck:
            record.outcome = await _describe(runtime, record.saga_id)
            return
        except Exception as error:
            if remaining <= 0:
                record.outcome = await _describe(runtime, record.saga_id)
                return
            log.debug("watch %s: %s", record.saga_id, error)
            await asyncio.sleep(RETRY_S)


async def _describe(runtime: SagaRuntime, saga_id: str) -> SagaOutcome | None:
    with contextlib.suppress(Exception):
        return await runtime.describe(saga_id)
    return None


async def _until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.time()))


async def fire(
    runtime: SagaRuntime,
    plans: PlanBoard,
    orders: list[ChaosOrder],
    kills: list[tuple[Kill, str]],
    *,
    rate: float,
    namespace: Namespace,
    seed: SeedData,
    supervisor: ControlAddress | None,
    bound_s: float,
) -> VariantRun:
    """Submit at ``rate``, kill on schedule, watch every saga until it ends or the bound."""
    await seed_namespace(runtime.domain, namespace, seed)
    before = await _restarts(supervisor)
    started = time.time()
    window = len(orders) / rate
    until = started + window + bound_s
    records = [
        SagaRecord(o, namespace.saga_id(o.case.order.order_id), started + o.index / rate)
        for o in orders
    ]
    killed = [KillRecord(kill, target) for kill, target in kills]

    async def one(record: SagaRecord) -> None:
        await _until(record.due_at)
        await submit(runtime, plans, record, namespace, until)
        if record.submitted_at is not None:
            await watch(runtime, record, until)

    async def strike(record: KillRecord) -> None:
        assert supervisor is not None
        await _until(started + record.kill.at_s)
        answer = await control.request(
            supervisor, "kill", kind=record.target, down_s=record.kill.down_s
        )
        record.pid, record.killed_at = answer.get("pid"), answer.get("killed_at")
        timeout = max(60.0, until - time.time())
        ready = await control.request(
            supervisor, "wait_ready", kind=record.target, timeout_s=timeout, wait_s=timeout + 5
        )
        record.back_at = ready.get("ready_at")

    await asyncio.gather(*(one(r) for r in records), *(strike(k) for k in killed))
    run = VariantRun(runtime.variant, namespace, started, rate, records, killed)
    run.finished_at = time.time()
    run.state = namespace.restrict(await snapshot(runtime, until))
    after = await _restarts(supervisor)
    run.restarts = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in after}
    return run


async def fault_free(
    runtime: SagaRuntime,
    plans: PlanBoard,
    orders: list[ChaosOrder],
    *,
    concurrency: int,
    namespace: Namespace,
    seed: SeedData,
    bound_s: float,
) -> VariantRun:
    """The same orders without kills or crash points, ``concurrency`` in flight: the
    reference outcomes and the measured capacity."""
    await seed_namespace(runtime.domain, namespace, seed)
    started = time.time()
    until = started + bound_s
    gate = asyncio.Semaphore(concurrency)
    calm = [o.calm() for o in orders]
    records = [SagaRecord(o, namespace.saga_id(o.case.order.order_id), 0.0) for o in calm]

    async def one(record: SagaRecord) -> None:
        async with gate:
            record.due_at = time.time()
            await submit(runtime, plans, record, namespace, until)
            await watch(runtime, record, until)

    await asyncio.gather(*(one(r) for r in records))
    run = VariantRun(runtime.variant, namespace, started, 0.0, records)
    run.finished_at = time.time()
    run.state = namespace.restrict(await snapshot(runtime, until))
    return run


async def snapshot(runtime: SagaRuntime, until: float) -> BusinessState:
    """The variant's state; a store whose server was just restarted is asked again."""
    while True:
        try:
            return await runtime.domain.snapshot()
        except Exception as error:  # a pooled connection the server's restart broke
            if time.time() >= until:
                raise
            log.debug("snapshot: %s", error)
            await asyncio.sleep(RETRY_S)


async def _restarts(supervisor: ControlAddress | None) -> dict[str, int]:
    if supervisor is None:
        return {}
    status = await control.request(supervisor, "status")
    return {kind: int(info["restarts"]) for kind, info in status["kinds"].items()}
