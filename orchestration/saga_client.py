"""How a client talks to one saga's workflow: start, cancel, describe, wait, operator actions.

Temporal's errors become the shared vocabulary here, so the runtime's methods stay one line:
a duplicate order id is `DuplicateOrder` (reported synchronously by the ``place`` update of
update-with-start), an id no saga has is `UnknownSaga`, an operator action on a saga that does
not wait for one is `NotAwaitingOperator`.

An operator's action is saga work: it runs under a span of the saga's own trace (read from the
workflow's start header), whoever asks, so the update and the compensations it runs land in
the trace the saga started.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from opentelemetry import propagate
from opentelemetry.context import Context
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from orchestration.messages import DUPLICATE_ORDER, NOT_WAITING, OperatorCall, SagaInput
from orchestration.visibility import (
    DEFINITION_MEMO,
    start_attributes,
    start_details,
    start_summary,
)
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import OperatorAction, SagaOutcome
from shared.errors import DuplicateOrder
from shared.runtime import NotAwaitingOperator, UnknownSaga
from shared.telemetry import SAGA_ID, SAGA_VARIANT, get_tracer

_tracer = get_tracer("saga-compare.orchestration.operator")
TRACE_HEADER = "_tracer-data"
"""Where temporalio's TracingInterceptor puts the starter's span context."""
QUERY_TIMEOUT = timedelta(seconds=5)
"""A query needs a live worker; without one it would wait forever."""

SagaHandle = WorkflowHandle[OrderSagaWorkflow, SagaOutcome]


async def start(client: Client, task_queue: str, saga: SagaInput) -> None:
    """Start the saga's workflow and place its order in one call (update-with-start).

    A repeated start of the same saga id is a no-op (the ``place`` update of a running saga
    returns at once; a closed one is left alone); another saga holding the order id raises
    DuplicateOrder, and that workflow ends without having changed anything.
    """
    operation = WithStartWorkflowOperation(
        OrderSagaWorkflow.run,
        saga,
        id=saga.saga_id,
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A saga id names one saga forever: a repeated start is a no-op, never a rerun.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=start_attributes(saga.order),
        # The definition it runs, listed with it (the monitor's version column): no query.
        memo={DEFINITION_MEMO: saga.definition.model_dump()},
        static_summary=start_summary(saga.order),
        static_details=start_details(saga.order, saga.saga),
    )
    try:
        await client.execute_update_with_start_workflow(
            OrderSagaWorkflow.place, start_workflow_operation=operation
        )
    except WorkflowAlreadyStartedError:
        return
    except WorkflowUpdateFailedError as error:
        if _cause_type(error) == DUPLICATE_ORDER:
            raise DuplicateOrder(saga.order.order_id, _holder(error)) from None
        raise


async def describe(handle: SagaHandle) -> SagaOutcome:
    """The workflow's own view of its saga (UnknownSaga when there is no saga by that id)."""
    try:
        return await handle.query(OrderSagaWorkflow.describe, rpc_timeout=QUERY_TIMEOUT)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise UnknownSaga(handle.id) from None
        raise
    except WorkflowQueryFailedError:
        raise UnknownSaga(handle.id) from None  # its placement was refused: no saga


async def settled(handle: SagaHandle) -> SagaOutcome:
    """The outcome once settled: the workflow's result, or its ``settled`` update while it
    stays open for an operator (NEEDS_INTERVENTION)."""
    try:
        return await handle.execute_update(OrderSagaWorkflow.settled)
    except RPCError as error:
        if error.status is not RPCStatusCode.NOT_FOUND:
            raise
    except WorkflowUpdateFailedError:
        raise UnknownSaga(handle.id) from None
    return await handle.result()  # already closed: its result is the outcome


async def saga_trace(handle: SagaHandle) -> Context | None:
    """The saga's trace context: the starter's, from the workflow's start header."""
    try:
        async for event in handle.fetch_history_events(page_size=1, rpc_timeout=QUERY_TIMEOUT):
            fields = event.workflow_execution_started_event_attributes.header.fields
            payload = fields.get(TRACE_HEADER)
            carrier = json.loads(payload.data) if payload is not None else None
            return propagate.extract(carrier) if isinstance(carrier, dict) else None
    except (RPCError, ValueError):
        return None
    return None


async def act(handle: SagaHandle, update: str, call: OperatorCall) -> OperatorAction:
    """An operator's update (``retry_compensation``, ``retry_step`` or ``resolve``); returns
    the action done."""
    context = await saga_trace(handle)
    attributes = {SAGA_ID: handle.id, SAGA_VARIANT: "orchestration"}
    try:
        with _tracer.start_as_current_span(
            f"operator {update}", context=context, attributes=attributes
        ):
            action: OperatorAction = await handle.execute_update(
                update, call, result_type=OperatorAction
            )
    except WorkflowUpdateFailedError as error:
        if _cause_type(error) == NOT_WAITING:
            raise NotAwaitingOperator(handle.id, _cause_message(error)) from None
        raise
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            outcome = await describe(handle)
            raise NotAwaitingOperator(handle.id, outcome.status.value) from None
        raise
    return action


class SagaOperator:
    """An operator's updates on sagas' open workflows, over any client of the frontend: the
    embedded runtime's, or the monitor's over a deployment (it needs no worker of its own)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        """Retry the saga's failed compensations; returns what came of it."""
        return await act(self._handle(saga_id), "retry_compensation", OperatorCall(who=who))

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        """Run the saga's failed step past the pivot again; returns what came of it."""
        return await act(self._handle(saga_id), "retry_step", OperatorCall(who=who))

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """Mark the saga resolved by hand, with a note."""
        return await act(self._handle(saga_id), "resolve", OperatorCall(who=who, note=note))

    def _handle(self, saga_id: str) -> SagaHandle:
        return self.client.get_workflow_handle_for(OrderSagaWorkflow.run, saga_id)


def _cause_type(error: WorkflowUpdateFailedError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None


def _holder(error: WorkflowUpdateFailedError) -> str:
    """The saga that holds the order id, as the workflow's refusal names it."""
    cause = error.cause
    details = cause.details if isinstance(cause, ApplicationError) else ()
    return str(details[0]) if details else "another saga"


def _cause_message(error: WorkflowUpdateFailedError) -> str:
    """The saga's state as the workflow's refusal names it (``... (it is COMPENSATED)``)."""
    found = re.search(r"\(it is ([\w ]+)\)", str(error.cause))
    return found.group(1) if found else "not waiting"
