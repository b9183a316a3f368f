"""The orchestration variant's composition root: server, client, worker and Domain in one place.

`open_runtime` starts an embedded dev server unless the settings name an address (then it
checks that the saga's search attributes exist there), connects a traced client, runs an
in-process worker on its own task queue and opens the Domain. The worker's spans name it
``order-saga-worker``: its client's tracer is fixed to it and its tasks run in its scope.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from orchestration import saga_client
from orchestration.client import check_search_attributes, connect, for_component
from orchestration.messages import REMOTE, ActivityMode, SagaInput
from orchestration.saga_client import SagaHandle
from orchestration.server import TemporalServer, TemporalSettings
from orchestration.worker import build_worker
from orchestration.workflows import OrderSagaWorkflow
from shared.catalogue import admit
from shared.contracts import (
    OperatorAction,
    OrderRequest,
    SagaOutcome,
    SagaPolicy,
    StepId,
    StepStatus,
)
from shared.faults import FaultPlan
from shared.runtime import SagaStuck
from shared.saga import SAGA, SagaSpec
from shared.services import SERVICES, Domain, ServiceDef
from shared.store import StoreFactory, sqlite_stores
from shared.telemetry import WORKER, Tracing, current_tracing, service_scope

VARIANT = "orchestration"

DEV_SERVER_CONFIG: Mapping[str, object] = {
    # The history service reads each shard's task queues at most 20 times a second by default;
    # the dev server has one shard, so every workflow task waited up to 50 ms to be dispatched.
    "history.transferProcessorMaxPollRPS": 1000,
    "history.timerProcessorMaxPollRPS": 1000,
    "history.visibilityProcessorMaxPollRPS": 1000,
    # Timers (retry backoffs, the deadline) fired up to 1 s late: the timer queue's default
    # look-ahead shift is 1 s, so a 50 ms backoff cost a whole second.
    "history.timerProcessorMaxTimeShift": "10ms",
    # One partition per task queue: no forwarding between partitions on a one-node server.
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}
"""Dynamic config for the embedded dev server; figures in docs/temporal-latency.md."""


class OrchestrationRuntime:
    """SagaRuntime over Temporal: a saga is an OrderSagaWorkflow whose id is the saga id."""

    variant = VARIANT

    def __init__(
        self,
        client: Client,
        task_queue: str,
        domain: Domain,
        *,
        ui_url: str | None = None,
        activities: ActivityMode = REMOTE,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.domain = domain
        self.ui_url = ui_url
        self.activities: ActivityMode = activities
        # Waiting is observation, not part of a saga: no spans (the harness's root span times it).
        self._observer = Client(
            client.service_client, namespace=client.namespace, data_converter=client.data_converter
        )

    async def start_saga(
        self, saga_id: str, order: OrderRequest, faults: FaultPlan, policy: SagaPolicy
    ) -> None:
        """Start the workflow; once the server accepts it the saga (and its order) is durable."""
        await admit(self.domain, order)
        saga = SagaInput(
            saga_id=saga_id,
            order=order,
            faults=faults,
            policy=policy,
            saga=self.domain.saga,
            activities=self.activities,
        )
        await saga_client.start(self.client, self.task_queue, saga)

    async def cancel_saga(self, saga_id: str) -> None:
        await self._handle(saga_id).signal(OrderSagaWorkflow.cancel)

    async def describe(self, saga_id: str) -> SagaOutcome:
        """The workflow's own view, with the server's attempt count for a step in flight."""
        handle = self._handle(saga_id)
        outcome = await saga_client.describe(handle)
        if outcome.status.terminal:
            return outcome
        return await _with_live_attempts(handle, outcome)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The settled outcome (waiting for an operator counts), observed without tracing."""
        handle = self._observer.get_workflow_handle_for(OrderSagaWorkflow.run, saga_id)
        try:
            return await asyncio.wait_for(saga_client.settled(handle), timeout_s)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # The SDK reports an update call cut short by the timeout as its own error.
            raise SagaStuck(saga_id, await self._stuck_in(saga_id), timeout_s) from None

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        """An operator retries the saga's failed compensations; returns what came of it."""
        return await saga_client.SagaOperator(self.client).retry_compensation(saga_id, who)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """An operator marks the saga resolved by hand, with a note."""
        return await saga_client.SagaOperator(self.client).resolve(saga_id, who, note)

    async def _stuck_in(self, saga_id: str) -> StepId | None:
        """The step in flight, or None when even the query gets no answer (no worker)."""
        try:
            return _in_flight(await self.describe(saga_id))
        except RPCError:
            return None

    def _handle(self, saga_id: str) -> SagaHandle:
        return self.client.get_workflow_handle_for(OrderSagaWorkflow.run, saga_id)


async def _with_live_attempts(handle: SagaHandle, outcome: SagaOutcome) -> SagaOutcome:
    """Attempts of running steps come from the server: the workflow learns them only at the end."""
    description = await handle.describe()
    live = {
        pending.activity_type.name: pending.attempt
        for pending in description.raw_description.pending_activities
    }
    steps = [
        state.model_copy(update={"attempts": live[state.step]})
        if state.status is StepStatus.RUNNING and state.step in live
        else state
        for state in outcome.steps
    ]
    return outcome.model_copy(update={"steps": steps})


def _in_flight(outcome: SagaOutcome) -> StepId | None:
    running = [state.step for state in outcome.steps if state.status is StepStatus.RUNNING]
    return running[-1] if running else None


@asynccontextmanager
async def open_runtime(
    data_dir: Path,
    *,
    settings: TemporalSettings | None = None,
    tracing: Tracing | None = None,
    run_worker: bool = True,
    server_state_dir: Path | None = None,
    ui: bool = False,
    dynamic_config: Mapping[str, object] | None = None,
    stores: StoreFactory | None = None,
    saga: SagaSpec = SAGA,
    registry: Mapping[str, ServiceDef] = SERVICES,
    activities: ActivityMode = REMOTE,
) -> AsyncIterator[OrchestrationRuntime]:
    """Yield a ready runtime; everything it started is stopped when the block ends.

    The services' stores come from ``stores`` (default: one SQLite file per service in
    ``data_dir``). Sagas run ``saga`` (it travels in each workflow's input), whose steps the
    ``registry``'s services implement; ``activities`` is how they run their activities
    (remote or local).
    """
    settings = settings or TemporalSettings.from_env()
    async with AsyncExitStack() as stack:
        address, ui_url = settings.address, None
        if address is None:
            server = TemporalServer(
                state_dir=server_state_dir,
                ui=ui,
                namespace=settings.namespace,
                dynamic_config=DEV_SERVER_CONFIG if dynamic_config is None else dynamic_config,
            )
            await stack.enter_async_context(server)
            address, ui_url = server.address, server.ui_url
        domain = Domain(stores or sqlite_stores(data_dir), saga=saga, services=registry)
        await domain.open()
        stack.push_async_callback(domain.close)
        tracing = tracing or current_tracing()
        client = await connect(address, settings.namespace, tracing=tracing)
        if settings.address is not None:
            await check_search_attributes(client)
        task_queue = settings.task_queue
        if run_worker:
            # Its own queue, so no other worker (over other data) takes this runtime's tasks.
            task_queue = f"{task_queue}-{uuid.uuid4().hex[:8]}"
            worker = build_worker(for_component(client, tracing, WORKER), task_queue, domain)
            with service_scope(WORKER):  # the worker's tasks (activities) inherit the scope
                await stack.enter_async_context(worker)
        yield OrchestrationRuntime(client, task_queue, domain, ui_url=ui_url, activities=activities)
