"""Hours of backoff and deadlines in seconds of test time, on Temporal's time-skipping server."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from harness.compare.faulty import injected
from orchestration.activities import SagaActivities
from orchestration.client import register_search_attributes
from orchestration.messages import SagaInput
from orchestration.workflows import OrderSagaWorkflow
from shared.admission import PolicyLimits
from shared.contracts import (
    OrderRequest,
    Phase,
    Reason,
    SagaOutcome,
    SagaPolicy,
    SagaStatus,
    StepName,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule, MemoryPlans
from shared.seed import seed
from shared.servers import find_binary
from shared.services import Domain
from shared.store import sqlite_stores
from tests.integration.orchestration.orchestration_support import (
    SEEDED_WIDGETS,
    attempts,
    effects,
    new_id,
    order,
    untouched,
)

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

SLOW = SagaPolicy(
    deadline_s=6 * 3600,
    attempt_timeout_s=60,
    initial_backoff_s=120,
    backoff_factor=2,
    max_backoff_s=3600,
    compensation_attempts=4,
)
"""Minutes to hours between attempts: real time would take hours, skipped time takes none."""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    binary = str(find_binary("temporal-test-server"))
    async with await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter, test_server_existing_path=binary
    ) as started:
        await register_search_attributes(started.client)  # the workflow upserts them
        yield started


@dataclass
class Saga:
    env: WorkflowEnvironment
    domain: Domain
    task_queue: str
    plans: MemoryPlans

    async def run(self, saga_id: str, order: OrderRequest, faults: FaultPlan) -> SagaOutcome:
        self.plans.install(saga_id, faults)
        saga = SagaInput(
            saga_id=saga_id,
            order=order,
            policy=SLOW,
            saga=ORDERS_V1.spec,
            definition=ORDERS_V1.ref,
        )
        return await self.env.client.execute_workflow(
            OrderSagaWorkflow.run, saga, id=saga_id, task_queue=self.task_queue
        )


@pytest_asyncio.fixture(loop_scope="module")
async def saga(env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Saga]:
    domain = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
    await seed(domain)
    task_queue = f"skip-{uuid.uuid4().hex[:8]}"
    plans, hooks = injected("orchestration")
    # Hours of deadline and backoff: a deployment allowing them says so in its limits.
    limits = PolicyLimits(deadline_s=SLOW.deadline_s, backoff_s=SLOW.max_backoff_s)
    activities = SagaActivities(domain, hooks.step, limits=limits).all()
    try:
        async with Worker(
            env.client, task_queue=task_queue, workflows=[OrderSagaWorkflow], activities=activities
        ):
            yield Saga(env, domain, task_queue, plans)
    finally:
        await domain.close()


async def test_half_an_hour_of_retry_backoff_completes_in_seconds(saga: Saga) -> None:
    saga_id = new_id("backoff")
    flaky = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, transient=4)])
    before, started = await saga.env.get_current_time(), time.monotonic()

    outcome = await saga.run(saga_id, order(saga_id), flaky)

    assert outcome.status is SagaStatus.COMPLETED
    assert attempts(outcome, Phase.FORWARD)[StepName.CHARGE_PAYMENT] == 5
    skipped = await saga.env.get_current_time() - before
    assert skipped >= timedelta(seconds=120 + 240 + 480 + 960)
    assert time.monotonic() - started < 10


async def test_deadline_expires_between_retries_and_compensates_as_timed_out(saga: Saga) -> None:
    saga_id = new_id("deadline")
    down = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, transient=1_000_000)])
    before = await saga.env.get_current_time()

    outcome = await saga.run(saga_id, order(saga_id), down)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    assert await saga.env.get_current_time() - before >= timedelta(seconds=SLOW.deadline_s)
    assert await effects(saga.domain, saga_id) == untouched(
        charged=False, shipped=False, reason=Reason.TIMED_OUT
    )


async def test_deadline_is_ignored_once_past_the_pivot(saga: Saga) -> None:
    saga_id = new_id("after-pivot")
    # 2 + 4 + ... + 60 minutes of backoff: well past the 6 hour deadline, yet the order completes.
    late = FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, transient=12)])

    outcome = await saga.run(saga_id, order(saga_id), late)

    assert outcome.status is SagaStatus.COMPLETED
    assert (await effects(saga.domain, saga_id)).widgets_in_stock == SEEDED_WIDGETS - 2


async def test_compensation_backoff_is_skipped_too(saga: Saga) -> None:
    saga_id = new_id("slow-refund")
    flaky = FaultPlan(rules=[FaultRule(step=StepName.REFUND_PAYMENT, transient=3)])

    outcome = await saga.run(saga_id, order(saga_id, country="AQ"), flaky)

    assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED)
    assert attempts(outcome, Phase.COMPENSATE)[StepName.REFUND_PAYMENT] == 4
