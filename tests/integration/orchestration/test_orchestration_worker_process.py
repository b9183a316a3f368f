"""`python -m orchestration.worker` as a process: it runs sagas; a killed one is replaced."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytest_asyncio

from harness.compare.faulty import Faulty
from harness.deploy.deployment import CHAOS_HOOKS
from orchestration.runtime import OrchestrationRuntime, open_runtime
from orchestration.server import TemporalServer, TemporalSettings
from shared import faults
from shared.contracts import Phase, SagaStatus, StepName
from shared.definitions import ORDERS_V1
from shared.faults import DirectoryPlans, FaultInjector, FaultPlan, FaultRule, MemoryPlans
from shared.faults.deployment import FAULTS_DIR_ENV, PLANS
from shared.seed import seed
from tests.integration.orchestration.orchestration_support import (
    FAST,
    attempts,
    effects,
    new_id,
    order,
    wait_running,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


@pytest_asyncio.fixture(loop_scope="module")
async def workerless(
    temporal_server: TemporalServer, tmp_path: Path
) -> AsyncIterator[Faulty[OrchestrationRuntime]]:
    """A runtime that only starts and observes sagas; worker processes do the work, with the
    fault injector of a chaos deployment reading the plans ``start_saga`` writes."""
    settings = TemporalSettings(address=temporal_server.address, task_queue=new_id("proc"))
    async with open_runtime(tmp_path, ORDERS_V1, settings=settings, run_worker=False) as runtime:
        await seed(runtime.domain)
        yield Faulty(runtime, DirectoryPlans(tmp_path / "faults" / PLANS))


@contextmanager
def worker_process(
    runtime: Faulty[OrchestrationRuntime], address: str, data_dir: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A worker process over the runtime's data folder and task queue; killed if still alive."""
    env = {
        **os.environ,
        "SAGA_TEMPORAL_ADDRESS": address,
        "SAGA_TEMPORAL_TASK_QUEUE": runtime.runtime.task_queue,
        "SAGA_DATA_DIR": str(data_dir),
        "SAGA_HOOKS": CHAOS_HOOKS,
        FAULTS_DIR_ENV: str(data_dir / "faults"),
    }
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def exit_code(process: subprocess.Popen[bytes], timeout_s: float = 10) -> int | None:
    for _ in range(int(timeout_s / 0.05)):
        if process.poll() is not None:
            return process.returncode
        await asyncio.sleep(0.05)
    return None


async def test_worker_process_runs_a_saga_and_stops_cleanly_on_sigterm(
    workerless: Faulty[OrchestrationRuntime], temporal_server: TemporalServer, tmp_path: Path
) -> None:
    saga_id = new_id("proc")
    with worker_process(workerless, temporal_server.address, tmp_path) as worker:
        await workerless.start_saga(saga_id, order(saga_id), FaultPlan(), FAST)
        outcome = await workerless.wait(saga_id, 20)
        worker.send_signal(signal.SIGTERM)

        assert await exit_code(worker) == 0
    assert outcome.status is SagaStatus.COMPLETED
    assert (await effects(workerless.domain, saga_id)).shipment == "created"


async def test_a_worker_killed_mid_step_is_replaced_and_the_step_is_retried_once(
    workerless: Faulty[OrchestrationRuntime], temporal_server: TemporalServer, tmp_path: Path
) -> None:
    saga_id = new_id("killed")
    slow_charge = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=1_000)])
    # The deadline runs from the start, through two worker processes' start-ups: under a CPU
    # load those took long enough for FAST's 20 s to end the saga COMPENSATED (timed out).
    # The kill and the retry are what this test is about, so the deadline is out of the way.
    policy = FAST.model_copy(update={"attempt_timeout_s": 2.0, "deadline_s": 120.0})
    with worker_process(workerless, temporal_server.address, tmp_path) as first:
        await workerless.start_saga(saga_id, order(saga_id), slow_charge, policy)
        await wait_running(workerless, saga_id, StepName.CHARGE_PAYMENT, timeout_s=60)
        first.kill()
    with worker_process(workerless, temporal_server.address, tmp_path):
        outcome = await workerless.wait(saga_id, 90)

    assert outcome.status is SagaStatus.COMPLETED
    assert attempts(outcome, Phase.FORWARD)[StepName.CHARGE_PAYMENT] == 2
    charges = [c for c in (await workerless.domain.snapshot()).charges if c.saga_id == saga_id]
    assert len(charges) == 1


async def test_a_worker_started_later_on_the_settings_task_queue_finishes_a_saga_in_flight(
    temporal_server: TemporalServer, tmp_path: Path
) -> None:
    """No random queue per process: the next worker polls the queue the saga waits on."""
    settings = TemporalSettings(address=temporal_server.address).isolated()
    saga_id = new_id("resumed")
    slow_charge = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=300)])
    board = MemoryPlans()  # both workers' injectors read the same plans, as in one deployment
    hooks = faults.hooks(FaultInjector.for_variant("orchestration", board))
    async with open_runtime(tmp_path, ORDERS_V1, settings=settings, hooks=hooks) as raw:
        first = Faulty(raw, board)
        await seed(first.domain)
        await first.start_saga(saga_id, order(saga_id), slow_charge, FAST)
        await wait_running(first, saga_id, StepName.CHARGE_PAYMENT, timeout_s=20)
    # The first worker is gone with the saga mid-step; a second one on the same queue resumes it.
    async with open_runtime(tmp_path, ORDERS_V1, settings=settings, hooks=hooks) as second:
        outcome = await second.wait(saga_id, 30)
        charges = [c for c in (await second.domain.snapshot()).charges if c.saga_id == saga_id]

    assert second.task_queue == raw.task_queue == settings.task_queue
    assert outcome.status is SagaStatus.COMPLETED
    assert len(charges) == 1
