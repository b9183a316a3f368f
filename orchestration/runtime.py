"""The orchestration variant as the harness drives it: a Temporal client on the task queue.

`open_runtime` builds the variant with `bootstrap`: an embedded dev server unless the
settings name an address (then it checks that the saga's search attributes exist there), a
traced client, the Domain (for seeding a run's catalogue and reading final state) and, unless
told otherwise, a worker in this process on the settings' stable task queue. Without it the
runtime is a front door to workers running elsewhere. The worker's spans name it
``order-saga-worker``: its client's tracer is fixed to it and its tasks run in its scope.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError

from orchestration import saga_client
from orchestration.bootstrap import DEV_SERVER_CONFIG, bootstrap
from orchestration.messages import REMOTE, ActivityMode, SagaInput
from orchestration.saga_client import SagaHandle
from orchestration.server import TemporalSettings
from orchestration.workflows import OrderSagaWorkflow
from shared.admission import Admission, PolicyLimits
from shared.contracts import (
    OperatorAction,
    OrderRequest,
    SagaOutcome,
    SagaPolicy,
    StepId,
    StepStatus,
)
from shared.countermeasures import DEFAULT, Countermeasures
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.runtime import SagaStuck
from shared.services import Domain
from shared.store import StoreFactory, sqlite_stores
from shared.telemetry import Tracing, current_tracing
from shared.validation import load_settings

__all__ = ["DEV_SERVER_CONFIG", "OrchestrationRuntime", "open_runtime"]

VARIANT = "orchestration"


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
        limits: PolicyLimits | None = None,
    ) -> None:
        self.client = client
        self.task_queue = task_queue
        self.domain = domain
        self.ui_url = ui_url
        self.activities: ActivityMode = activities
        self.admission = Admission(domain, limits or PolicyLimits())
        # Waiting is observation, not part of a saga: no spans (the harness's root span times it).
        self._observer = Client(
            client.service_client, namespace=client.namespace, data_converter=client.data_converter
        )

    async def start_saga(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Start the workflow; once the server accepts it the saga (and its order) is durable.

        An order the live records contradict, or a policy beyond the limits, is refused here
        first (Inadmissible, nothing started); the workflow's first activity judges it again.
        """
        await self.admission.check(order, policy)
        saga = SagaInput(
            saga_id=saga_id,
            order=order,
            policy=policy,
            activities=self.activities,
            saga=self.domain.saga,
            definition=self.domain.definition.ref,
        )
        await saga_client.start(self.client, self.task_queue, saga)

    async def submit(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Hand the saga to the deployment: the same as a start (the server holds it then)."""
        await self.start_saga(saga_id, order, policy)

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
        handle: SagaHandle = self._observer.get_workflow_handle_for(OrderSagaWorkflow.run, saga_id)
        try:
            return await asyncio.wait_for(saga_client.settled(handle), timeout_s)
        except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
            # The SDK reports an update call cut short by the timeout as its own error.
            raise SagaStuck(saga_id, await self._stuck_in(saga_id), timeout_s) from None

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        """An operator retries the saga's failed compensations; returns what came of it."""
        return await saga_client.SagaOperator(self.client).retry_compensation(saga_id, who)

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        """An operator runs the saga's failed step past the pivot again; returns what came
        of it."""
        return await saga_client.SagaOperator(self.client).retry_step(saga_id, who)

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
    definition: SagaDefinition,
    *,
    settings: TemporalSettings | None = None,
    tracing: Tracing | None = None,
    run_worker: bool = True,
    server_state_dir: Path | None = None,
    ui: bool = False,
    dynamic_config: Mapping[str, object] | None = None,
    stores: StoreFactory | None = None,
    activities: ActivityMode = REMOTE,
    hooks: Hooks = NO_HOOKS,
    countermeasures: Countermeasures = DEFAULT,
) -> AsyncIterator[OrchestrationRuntime]:
    """Yield a ready runtime; everything it started is stopped when the block ends.

    The services' stores come from ``stores`` (default: one SQLite file per service in
    ``data_dir``); the worker, if any, polls ``settings.task_queue`` and runs its steps through
    ``hooks.step``. ``activities`` is how its sagas run their activities (remote or local).
    Sagas run the definition's spec (it travels in each workflow's input); the services apply
    ``countermeasures`` (the isolation switches, docs/anomalies.md).
    """
    settings = settings or TemporalSettings.from_settings(load_settings())
    tracing = tracing or current_tracing()
    async with AsyncExitStack() as stack:
        app = await stack.enter_async_context(
            bootstrap(
                settings,
                stores or sqlite_stores(data_dir),
                definition,
                tracing=tracing,
                run_worker=run_worker,
                hooks=hooks,
                server_state_dir=server_state_dir,
                ui=ui,
                dynamic_config=dynamic_config,
                countermeasures=countermeasures,
            )
        )
        yield OrchestrationRuntime(
            app.client,
            app.settings.task_queue,
            app.domain,
            ui_url=app.ui_url,
            activities=activities,
            limits=app.settings.limits,
        )
