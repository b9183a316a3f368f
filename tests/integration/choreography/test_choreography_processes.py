"""Every process kind as its own process (``python -m choreography --service NAME``)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from opentelemetry import trace

from choreography import outbox
from choreography.broker import NatsBroker, NatsSettings
from choreography.events import subject
from choreography.host import kinds_of_process
from choreography.runtime import ChoreographyRuntime, ChoreographySettings, open_runtime
from harness.deploy.deployment import CHAOS_HOOKS
from shared.contracts import SagaStatus, ServiceName, StepName
from shared.definitions import ORDERS_V1
from shared.faults import CrashPoint, DirectoryPlans, FaultPlan, FaultRule
from shared.faults.deployment import FAULTS_DIR_ENV, PLANS
from shared.seed import seed
from shared.servers import ManagedProcess
from shared.services import Domain
from shared.store import sqlite_stores
from shared.telemetry import read_jsonl
from tests.integration.choreography.choreography_support import (
    QUICK,
    make_order,
    saga_id,
    stream_count,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


async def _start(stack: AsyncExitStack, kind: str, env: dict[str, str]) -> ManagedProcess:
    command = [sys.executable, "-m", "choreography", "--service", kind]
    process = await stack.enter_async_context(ManagedProcess(kind, command, env=env))

    async def ready() -> bool:
        return "ready" in process.log_tail()

    await process.wait_until(ready, what="ready", timeout=30)
    return process


async def test_happy_path_runs_across_six_processes_configured_by_environment_in_one_trace(
    broker: NatsBroker, tmp_path: Path
) -> None:
    data_dir, traces = tmp_path / "data", tmp_path / "traces.jsonl"
    suffix = f"-{uuid.uuid4().hex[:6]}"
    domain = await Domain(sqlite_stores(data_dir), ORDERS_V1).open()
    await seed(domain)
    await domain.close()
    # Only the environment, as a container gets it: no flags.
    env = {
        "SAGA_DATA_DIR": str(data_dir),
        "SAGA_NATS_URL": broker.url,
        "SAGA_NATS_CONSUMER_SUFFIX": suffix,
        "SAGA_TRACE_FILE": str(traces),
    }
    settings = ChoreographySettings(nats=NatsSettings(url=broker.url), consumer_suffix=suffix)
    sid = saga_id("procs")

    async with AsyncExitStack() as stack:
        processes = [await _start(stack, kind, env) for kind in kinds_of_process(ORDERS_V1)]
        async with open_runtime(data_dir, ORDERS_V1, settings=settings, services=()) as front:
            with trace.get_tracer("test").start_as_current_span("saga procs") as root:
                await front.start_saga(sid, make_order(sid, points=100), QUICK)
                outcome = await front.wait(sid, 20)
            state = await front.domain.snapshot()
        assert all(process.running for process in processes)
    # Stopped with SIGTERM: each process flushed its spans on the way out.

    assert outcome.status is SagaStatus.COMPLETED
    assert [s.saga_id for s in state.shipments] == [sid]
    assert state.points["alice"] == 5_000 - 100
    spans = read_jsonl(traces)
    names = {span["resource"]["service.name"] for span in spans}
    assert names == {service.value for service in ServiceName}
    saga_spans = [span for span in spans if span["attributes"].get("saga.id") == sid]
    assert {span["trace_id"] for span in saga_spans} == {f"{root.get_span_context().trace_id:032x}"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "--service payment needs a NATS server"),
        (["--nats", "nats://127.0.0.1:9"], "cannot connect to NATS"),
    ],
)
async def test_service_process_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, extra: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "choreography", "--service", "payment"]
    command += ["--data-dir", str(tmp_path), *extra]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SAGA_NATS_URL": ""},
    )
    _, stderr = await process.communicate()

    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert len(lines) == 1 and message in lines[0], lines


async def _deployment(
    stack: AsyncExitStack, broker: NatsBroker, tmp_path: Path
) -> tuple[dict[str, ManagedProcess], ChoreographyRuntime, DirectoryPlans]:
    """Every process kind as its own process, with the fault injector of a chaos deployment
    (``up --chaos``): plans out of band in a folder, crash points kill the process for real."""
    data_dir, faults_dir = tmp_path / "data", tmp_path / "faults"
    suffix = f"-{uuid.uuid4().hex[:6]}"
    domain = await Domain(sqlite_stores(data_dir), ORDERS_V1).open()
    await seed(domain)
    await domain.close()
    env = {
        "SAGA_DATA_DIR": str(data_dir),
        "SAGA_NATS_URL": broker.url,
        "SAGA_NATS_CONSUMER_SUFFIX": suffix,
        "SAGA_NATS_ACK_WAIT_S": "1",
        "SAGA_HOOKS": CHAOS_HOOKS,
        FAULTS_DIR_ENV: str(faults_dir),
    }
    processes = {kind: await _start(stack, kind, env) for kind in kinds_of_process(ORDERS_V1)}
    settings = ChoreographySettings(nats=NatsSettings(url=broker.url), consumer_suffix=suffix)
    front = await stack.enter_async_context(
        open_runtime(data_dir, ORDERS_V1, settings=settings, services=())
    )
    return processes, front, DirectoryPlans(faults_dir / PLANS)


async def _exits(process: ManagedProcess, timeout: float = 20.0) -> int | None:
    return await process.wait(timeout)


async def test_an_event_committed_before_a_kill_is_published_after_the_restart_exactly_once(
    broker: NatsBroker, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        processes, front, plans = await _deployment(stack, broker, tmp_path)
        sid = saga_id("crash")
        charged = subject("payment.charged", sid)
        crash = FaultRule(step=StepName.CHARGE_PAYMENT, crash=CrashPoint.AFTER_COMMIT)
        plans.install(sid, FaultPlan(rules=[crash]))

        await front.start_saga(sid, make_order(sid, points=100), QUICK)
        payment = processes[ServiceName.PAYMENT]
        assert await _exits(payment) == -signal.SIGKILL

        # Dead: the charge and its event committed together, and nothing left the process.
        assert len(await front.domain.payment.charges()) == 1
        unsent = await outbox.unsent(front.domain.payment.store)
        assert [row.subject for row in unsent] == [charged]
        assert await stream_count(front, charged) == 0

        await payment.start()  # what its supervisor does
        outcome = await front.wait(sid, 20)

        assert outcome.status is SagaStatus.COMPLETED
        assert await stream_count(front, charged) == 1
        assert await outbox.unsent(front.domain.payment.store) == []
        assert len(await front.domain.payment.charges()) == 1


async def test_a_kill_before_the_commit_rolls_back_and_the_redelivery_does_the_work(
    broker: NatsBroker, tmp_path: Path
) -> None:
    async with AsyncExitStack() as stack:
        processes, front, plans = await _deployment(stack, broker, tmp_path)
        sid = saga_id("early")
        crash = FaultRule(step=StepName.DEDUCT_POINTS, crash=CrashPoint.BEFORE_COMMIT)
        plans.install(sid, FaultPlan(rules=[crash]))

        await front.start_saga(sid, make_order(sid, points=100), QUICK)
        points = processes[ServiceName.POINTS]
        assert await _exits(points) == -signal.SIGKILL
        assert (await front.domain.points.balances())["alice"] == 5_000

        await points.start()
        outcome = await front.wait(sid, 20)

    assert outcome.status is SagaStatus.COMPLETED
    deduct = next(s for s in outcome.steps if s.step is StepName.DEDUCT_POINTS)
    assert deduct.attempts == 2
