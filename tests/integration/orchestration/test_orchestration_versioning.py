"""Version 2 deployed while version-1 sagas run, on a real dev server: each workflow
versioning setting (docs/versioning.md) with a v1 saga parked at a step by a hold."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

from orchestration.bootstrap import build_worker
from orchestration.client import connect
from orchestration.runtime import OrchestrationRuntime, open_runtime
from orchestration.server import TemporalServer, TemporalSettings
from orchestration.versioning import adopt_if_unset, build_id, set_current, versioned
from orchestration.workflows import RESULTS
from shared import faults
from shared.contracts import SagaOutcome, SagaPolicy, SagaStatus, StepName, StepStatus
from shared.definition import SagaDefinition
from shared.definitions import ORDERS_V1, definition_named
from shared.faults import FaultInjector, FaultPlan, Hold, MemoryPlans, Signals, released
from shared.seed import seed
from shared.services import Domain
from shared.store import sqlite_stores
from tests.integration.orchestration.orchestration_support import FAST, new_id, order

pytestmark = pytest.mark.asyncio(loop_scope="module")

V2 = definition_named("v2")
PARKED = SagaPolicy(**{**FAST.model_dump(), "attempt_timeout_s": 3.0, "deadline_s": 300.0})
"""A saga parked by a hold must not meet its deadline; a hold's attempt outlives its timeout."""


@dataclass
class Upgrade:
    """One task queue, one set of stores, and the workers and starters of both versions."""

    server: TemporalServer
    data: Path
    task_queue: str
    client: Client
    plans: MemoryPlans = field(default_factory=MemoryPlans)
    signals: Signals = field(default_factory=Signals)

    @asynccontextmanager
    async def worker(self, definition: SagaDefinition, versioning: str) -> AsyncIterator[Worker]:
        injector = FaultInjector.for_variant("orchestration", self.plans, self.signals)
        domain = await Domain(sqlite_stores(self.data), definition).open()
        worker = build_worker(
            self.client,
            self.task_queue,
            domain,
            faults.hooks(injector).step,
            versioning=versioning,
        )
        try:
            async with worker:
                if versioned(versioning):  # what the worker's bootstrap does
                    await adopt_if_unset(self.client, self.task_queue, build_id(definition))
                yield worker
        finally:
            await domain.close()

    @asynccontextmanager
    async def starter(self, definition: SagaDefinition) -> AsyncIterator[OrchestrationRuntime]:
        settings = TemporalSettings(address=self.server.address, task_queue=self.task_queue)
        async with open_runtime(self.data, definition, settings=settings, run_worker=False) as rt:
            yield rt

    async def park(
        self, runtime: OrchestrationRuntime, step: StepName, release: str
    ) -> tuple[str, SagaOutcome]:
        """Start a saga held before ``step`` until ``release``; return once it waits there."""
        saga_id = new_id("parked")
        hold = Hold(step=step, until=released(release), timeout_s=1.0)
        self.plans.install(saga_id, FaultPlan(holds=[hold]))
        async with asyncio.timeout(30):
            await runtime.start_saga(saga_id, order(saga_id), PARKED)
        return saga_id, await until(runtime, saga_id, lambda o: running(o, step))


def running(outcome: SagaOutcome, step: str) -> bool:
    return any(s.step == step and s.status is StepStatus.RUNNING for s in outcome.steps)


async def until(
    runtime: OrchestrationRuntime,
    saga_id: str,
    condition: Callable[[SagaOutcome], bool],
    timeout_s: float = 30.0,
) -> SagaOutcome:
    async with asyncio.timeout(timeout_s):
        while not condition(outcome := await runtime.describe(saga_id)):
            await asyncio.sleep(0.05)
    return outcome


async def nondeterminism(client: Client, saga_id: str, timeout_s: float = 30.0) -> str:
    """The first workflow task failure of the saga's history that is a non-determinism error."""
    async with asyncio.timeout(timeout_s):
        while True:
            history = await client.get_workflow_handle(saga_id).fetch_history()
            for event in history.events:
                if event.HasField("workflow_task_failed_event_attributes"):
                    message = event.workflow_task_failed_event_attributes.failure.message
                    if "TMPRL1100" in message:
                        return message
            await asyncio.sleep(0.1)


def steps_of(outcome: SagaOutcome) -> list[str]:
    return [s.step for s in outcome.steps if s.status is StepStatus.DONE]


async def memo_of(client: Client, saga_id: str) -> dict[str, object]:
    description = await client.get_workflow_handle(saga_id).describe()
    return dict(await description.memo())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def temporal_server() -> AsyncIterator[TemporalServer]:
    async with TemporalServer(ui=False) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def upgrade(temporal_server: TemporalServer, tmp_path: Path) -> AsyncIterator[Upgrade]:
    settings = TemporalSettings(address=temporal_server.address).isolated()
    client = await connect(temporal_server.address, "default")
    async with AsyncExitStack() as stack:
        domain = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
        stack.push_async_callback(domain.close)
        await seed(domain)
        yield Upgrade(temporal_server, tmp_path, settings.task_queue, client)


V1_STEPS = [
    StepName.RESERVE_INVENTORY,
    StepName.CHARGE_PAYMENT,
    StepName.DEDUCT_POINTS,
    StepName.CREATE_SHIPMENT,
    StepName.COMPLETE_ORDER,
]


async def test_patched_v2_workers_finish_a_v1_saga_parked_past_a_step_as_v1(
    upgrade: Upgrade,
) -> None:
    async with upgrade.starter(ORDERS_V1) as v1:
        async with upgrade.worker(ORDERS_V1, "patched"):
            saga_id, _ = await upgrade.park(v1, StepName.DEDUCT_POINTS, "patched")
        async with upgrade.worker(V2, "patched"), upgrade.starter(V2) as v2:
            upgrade.signals.give(released("patched"))
            outcome = await v1.wait(saga_id, 30)
            new_id_ = new_id("v2")
            await v2.start_saga(new_id_, order(new_id_), FAST)
            fresh = await v2.wait(new_id_, 30)

    assert outcome.status is SagaStatus.COMPLETED and steps_of(outcome) == V1_STEPS
    assert RESULTS not in await memo_of(upgrade.client, saga_id)  # replayed as release 1
    assert fresh.status is SagaStatus.COMPLETED
    assert steps_of(fresh)[:3] == [StepName.RESERVE_INVENTORY, "fraud_check", "charge_payment"]
    results = (await memo_of(upgrade.client, new_id_))[RESULTS]
    assert isinstance(results, dict)
    assert results["charge_payment"] == {"amount": {"value": "39.98", "currency": "USD"}}


async def test_unversioned_v2_code_fails_a_v1_saga_past_a_step_until_patched_code_runs_it(
    upgrade: Upgrade,
) -> None:
    async with upgrade.starter(ORDERS_V1) as v1:
        async with upgrade.worker(ORDERS_V1, "none"):
            saga_id, _ = await upgrade.park(v1, StepName.CREATE_SHIPMENT, "none")
        async with upgrade.worker(V2, "none"):
            upgrade.signals.give(released("none"))
            error = await nondeterminism(upgrade.client, saga_id)
            # The workflow cannot answer a query meanwhile: the server says it is open.
            stuck = (await upgrade.client.get_workflow_handle(saga_id).describe()).status
        async with upgrade.worker(V2, "patched"):  # the operator deploys the patch
            outcome = await v1.wait(saga_id, 30)

    assert "Nondeterminism" in error and "ModifyWorkflowProperties" in error
    assert stuck is WorkflowExecutionStatus.RUNNING
    assert outcome.status is SagaStatus.COMPLETED and steps_of(outcome) == V1_STEPS


async def test_a_pinned_v1_saga_finishes_on_its_v1_worker_while_new_sagas_run_v2(
    upgrade: Upgrade,
) -> None:
    async with upgrade.starter(ORDERS_V1) as v1, upgrade.worker(ORDERS_V1, "pinned"):
        saga_id, _ = await upgrade.park(v1, StepName.CHARGE_PAYMENT, "pinned")
        async with upgrade.worker(V2, "pinned"), upgrade.starter(V2) as v2:
            made = await set_current(upgrade.client, upgrade.task_queue, build_id(V2))
            assert made.routed
            new_id_ = new_id("v2")
            await v2.start_saga(new_id_, order(new_id_), FAST)
            fresh = await v2.wait(new_id_, 30)
            upgrade.signals.give(released("pinned"))
            outcome = await v1.wait(saga_id, 30)
            versions = [await version_of(upgrade.client, s) for s in (saga_id, new_id_)]

    assert outcome.status is SagaStatus.COMPLETED and steps_of(outcome) == V1_STEPS
    assert fresh.status is SagaStatus.COMPLETED and "fraud_check" in steps_of(fresh)
    assert versions == [build_id(ORDERS_V1), build_id(V2)]


async def test_an_auto_upgrading_v1_saga_moves_to_patched_v2_workers_and_stays_v1(
    upgrade: Upgrade,
) -> None:
    async with upgrade.starter(ORDERS_V1) as v1, upgrade.worker(ORDERS_V1, "auto-upgrade"):
        saga_id, _ = await upgrade.park(v1, StepName.CHARGE_PAYMENT, "auto")
        async with upgrade.worker(V2, "auto-upgrade"):
            made = await set_current(upgrade.client, upgrade.task_queue, build_id(V2))
            assert made.routed
            upgrade.signals.give(released("auto"))
            outcome = await v1.wait(saga_id, 30)
            version = await version_of(upgrade.client, saga_id)

    assert outcome.status is SagaStatus.COMPLETED and steps_of(outcome) == V1_STEPS
    assert version == build_id(V2)


async def version_of(client: Client, saga_id: str) -> str:
    """The worker deployment version the workflow runs on (its last workflow task's)."""
    description = await client.get_workflow_handle(saga_id).describe()
    info = description.raw_description.workflow_execution_info.versioning_info
    return str(info.deployment_version.build_id)
