"""Every process kind as its own process (``python -m choreography --service NAME``)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from choreography_support import QUICK, make_order, saga_id
from opentelemetry import trace

from choreography.broker import NatsBroker, NatsSettings
from choreography.host import KINDS_OF_PROCESS
from choreography.runtime import ChoreographySettings, open_runtime
from shared.contracts import SagaStatus, ServiceName
from shared.faults import FaultPlan
from shared.seed import seed
from shared.servers import ManagedProcess
from shared.services import Domain
from shared.store import sqlite_stores
from shared.telemetry import read_jsonl

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
    domain = await Domain(sqlite_stores(data_dir)).open()
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
        processes = [await _start(stack, kind, env) for kind in KINDS_OF_PROCESS]
        async with open_runtime(data_dir, settings=settings, services=()) as front:
            with trace.get_tracer("test").start_as_current_span("saga procs") as root:
                await front.start_saga(sid, make_order(sid, points=100), FaultPlan(), QUICK)
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
