"""The orchestration's read API for the monitor: Temporal visibility, the query, the history.

Lists, counts and the intervention queue are visibility queries over the saga's custom search
attributes (``SagaStatus``, ``SagaStep``, ``SagaReason``, ``OrderId``; orchestration/
visibility.py). One saga's steps come from the workflow itself (its ``describe`` query while it
runs, its result once closed) with times from its history, which is also the raw list. Only the
frontend is asked: this works against the embedded dev server and any cluster alike.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    GetWorkflowExecutionHistoryReverseRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.client import WorkflowExecution as ListedExecution
from temporalio.converter import PayloadConverter
from temporalio.service import RPCError

from orchestration.messages import WORKFLOW_NAME, SagaInput
from orchestration.visibility import (
    COMPENSATING,
    DEFINITION_MEMO,
    ORDER_ID,
    RESOLVED,
    SAGA_REASON,
    SAGA_STATUS,
    SAGA_STEP,
    given_order_filter,
)
from orchestration.workflows import SETTLED_AT, OrderSagaWorkflow
from shared.contracts import OperatorAction, SagaOutcome, StepStatus
from shared.definition import REFUSAL_MARK
from shared.read_model import (
    LATENCY_WINDOW_S,
    MAX_ALERT_CANDIDATES,
    MAX_LATENCY_SAMPLES,
    ActionView,
    Alert,
    AlertKind,
    Counters,
    InterventionView,
    ListedStatus,
    RawEntry,
    SagaDetail,
    SagaQuery,
    SagaRow,
    StepView,
    alert_kinds,
    found_by,
    trace_id_of,
)

VARIANT = "orchestration"
QUERY_TIMEOUT = timedelta(seconds=2)
"""The query needs a live worker; without one the page shows the history's view instead."""
RPC_TIMEOUT = timedelta(seconds=10)
TRACE_HEADER = "_tracer-data"
"""Where temporalio's TracingInterceptor puts the starter's span context."""
MAX_INTERVENTIONS = 200
IN_FLIGHT = f'{SAGA_STATUS.name} IN ("{ListedStatus.RUNNING}", "{COMPENSATING}")'
_STEP_EVENTS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: StepStatus.DONE,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: StepStatus.FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: StepStatus.FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: StepStatus.FAILED,
}


def instant(at: float) -> str:
    """Epoch seconds as a visibility query timestamp (RFC 3339, microseconds, UTC)."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OrchestrationReadModel:
    """Read API over one namespace's OrderSaga workflows."""

    variant = VARIANT

    def __init__(self, client: Client, ui_url: str | None = None) -> None:
        self.client = client
        self.ui_url = ui_url
        self._started: dict[str, tuple[float | None, str | None]] = {}

    async def list_sagas(self, query: SagaQuery, now: float) -> list[SagaRow]:
        listed = self.client.list_workflows(
            self._filter(query, now), limit=query.limit, page_size=query.limit
        )
        rows = [await _versioned(execution) async for execution in listed]
        return [row for row in rows if found_by(row, query.search)]

    async def saga(self, saga_id: str) -> SagaDetail | None:
        handle = self.client.get_workflow_handle(saga_id)
        try:
            history = await handle.fetch_history(rpc_timeout=RPC_TIMEOUT)
            described = await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError:
            return None
        if described.workflow_type != WORKFLOW_NAME:
            return None
        row = await _versioned(described)
        events = list(history.events)
        outcome = await self._outcome(events, row)
        deadline_at, trace_id = (
            await self._deadline_and_trace(events[0]) if events else (None, None)
        )
        return SagaDetail(
            row=row,
            steps=_timeline(outcome, events),
            entries=[_entry(e) for e in events],
            entries_title="workflow history",
            failed_step=outcome.failed_step if outcome else None,
            failed_compensations=list(outcome.failed_compensations) if outcome else [],
            deadline_at=deadline_at,
            trace_id=trace_id,
            engine_url=self._ui_link(saga_id, described.run_id),
            actions=[_action(a) for a in outcome.actions] if outcome else [],
        )

    async def interventions(self) -> list[InterventionView]:
        views = []
        for execution in await self._waiting():
            row = _saga_row(execution)
            settled = await _settled_at(execution)
            views.append(
                InterventionView(
                    row=row,
                    failed_compensations=[row.step] if row.step else [],
                    since=settled or row.started_at,
                )
            )
        return sorted(views, key=lambda view: view.since)

    async def _waiting(self) -> list[ListedExecution]:
        """Sagas waiting for an operator: NEEDS_INTERVENTION, their workflow still open (a
        resolved one, or one a retry compensated, has closed)."""
        query = (
            f'{self._base()} AND {SAGA_STATUS.name} = "{ListedStatus.NEEDS_INTERVENTION}"'
            ' AND ExecutionStatus = "Running"'
        )
        return [e async for e in self.client.list_workflows(query, limit=MAX_INTERVENTIONS)]

    async def alerts(self, now: float, quiet_s: float, warn_s: float) -> list[Alert]:
        """The choreography's rule: running sagas older than ``quiet_s`` (they may be quiet),
        and younger ones whose deadline is within ``warn_s`` (a deadline shorter than the
        quiet time would otherwise pass before the saga is ever looked at)."""
        since = instant(now - quiet_s)
        old = await self._in_flight(f'StartTime < "{since}"')
        young = await self._in_flight(f'StartTime >= "{since}"')
        deadlines = await asyncio.gather(*(self._deadline_of(row.saga_id) for row in young))
        near = [
            row
            for row, deadline in zip(young, deadlines, strict=True)
            if deadline is not None and deadline - now <= warn_s
        ]
        checked = await asyncio.gather(
            *(self._alert(row, now, quiet_s, warn_s) for row in [*old, *near])
        )
        return [alert for alert in checked if alert is not None]

    async def _in_flight(self, clause: str) -> list[SagaRow]:
        """At most MAX_ALERT_CANDIDATES running sagas (the newest) matching ``clause``."""
        query = f"{self._base()} AND {IN_FLIGHT} AND {clause}"
        listed = self.client.list_workflows(query, limit=MAX_ALERT_CANDIDATES)
        return [_saga_row(execution) async for execution in listed]

    async def _deadline_of(self, saga_id: str) -> float | None:
        try:
            return await self._deadline(WorkflowExecution(workflow_id=saga_id))
        except RPCError:
            return None

    async def counters(self, now: float) -> Counters:
        base = self._base()
        since = instant(now - 60.0)
        flying = await self.client.count_workflows(f"{base} AND {IN_FLIGHT}")
        # Each saga counts when it reached its status (the ``settled_at`` memo). A COMPLETED,
        # COMPENSATED or REJECTED workflow closes as it settles; a NEEDS_INTERVENTION one stays
        # open while it waits for an operator, so those are read one by one (open, or closed
        # recently).
        ended = {}
        for status in (ListedStatus.COMPLETED, ListedStatus.COMPENSATED, ListedStatus.REJECTED):
            counted = await self.client.count_workflows(
                f'{base} AND CloseTime >= "{since}" AND {SAGA_STATUS.name} = "{status}"'
            )
            ended[status] = counted.count
        window = instant(now - LATENCY_WINDOW_S)
        recent = self.client.list_workflows(
            f'{base} AND CloseTime >= "{window}"', limit=MAX_LATENCY_SAMPLES
        )
        latencies = []
        needs_a_person = 0
        async for execution in recent:
            settled = await _settled_at(execution)
            if settled is None and execution.close_time is not None:
                settled = execution.close_time.timestamp()
            if settled is None:
                continue
            latencies.append(settled - execution.start_time.timestamp())
            said = _listed(execution.typed_search_attributes.get(SAGA_STATUS))
            if said is ListedStatus.NEEDS_INTERVENTION and settled >= now - 60.0:
                needs_a_person += 1
        for execution in await self._waiting():
            settled = await _settled_at(execution)
            if settled is None or settled < now - LATENCY_WINDOW_S:
                continue
            latencies.append(settled - execution.start_time.timestamp())
            needs_a_person += settled >= now - 60.0
        ended[ListedStatus.NEEDS_INTERVENTION] = needs_a_person
        return Counters(
            variant=VARIANT,
            in_flight=flying.count,
            ended_last_minute={s: n for s, n in ended.items() if n},
            latencies_s=latencies,
        )

    # -- helpers ---------------------------------------------------------------------------

    def _base(self) -> str:
        return f'WorkflowType = "{WORKFLOW_NAME}"'

    def _filter(self, query: SagaQuery, now: float) -> str:
        """The visibility query of a list page; every value was validated before it got here."""
        clauses = [self._base()]
        if query.statuses:
            said = [s.value for s in query.statuses]
            if ListedStatus.NEEDS_INTERVENTION in query.statuses:
                said.append(RESOLVED)  # the list shows a resolved saga as it ended
            listed = ", ".join(f'"{value}"' for value in said)
            clauses.append(f"{SAGA_STATUS.name} IN ({listed})")
        if query.step is not None:
            waiting = (
                f'"{ListedStatus.RUNNING}", "{COMPENSATING}", '
                f'"{ListedStatus.NEEDS_INTERVENTION}", "{RESOLVED}"'
            )
            clauses.append(
                f'{SAGA_STEP.name} = "{query.step}" AND {SAGA_STATUS.name} IN ({waiting})'
            )
        if query.min_age_s is not None:
            clauses.append(f'StartTime <= "{instant(now - query.min_age_s)}"')
        if query.max_age_s is not None:
            clauses.append(f'StartTime >= "{instant(now - query.max_age_s)}"')
        if query.search is not None:
            # The order id as given, or as a run placed it (found_by checks the tag).
            clauses.append(f'({given_order_filter(query.search)} OR WorkflowId = "{query.search}")')
        if query.after is not None and query.after.open:
            at = instant(query.after.at)
            clauses.append(f'(ExecutionStatus != "Running" OR StartTime < "{at}")')
        elif query.after is not None:
            at = instant(query.after.at)
            clauses.append(f'ExecutionStatus != "Running" AND CloseTime < "{at}"')
        return " AND ".join(clauses)

    def _ui_link(self, saga_id: str, run_id: str | None) -> str | None:
        if self.ui_url is None or run_id is None:
            return None
        namespace = self.client.namespace
        return (
            f"{self.ui_url.rstrip('/')}/namespaces/{namespace}/workflows/{saga_id}/{run_id}/history"
        )

    async def _outcome(self, events: Sequence[HistoryEvent], row: SagaRow) -> SagaOutcome | None:
        """The workflow's own view: its result once closed, its query while it runs."""
        last = events[-1] if events else None
        if last is not None and last.HasField("workflow_execution_completed_event_attributes"):
            payloads = last.workflow_execution_completed_event_attributes.result.payloads
            decoded = await self.client.data_converter.decode(list(payloads), [SagaOutcome])
            return decoded[0] if decoded and isinstance(decoded[0], SagaOutcome) else None
        if row.ended_at is not None:
            return None
        handle = self.client.get_workflow_handle_for(OrderSagaWorkflow.run, row.saga_id)
        try:
            return await handle.query(OrderSagaWorkflow.describe, rpc_timeout=QUERY_TIMEOUT)
        except (TimeoutError, RPCError, WorkflowQueryFailedError):
            return None

    async def _deadline_and_trace(self, started: HistoryEvent) -> tuple[float | None, str | None]:
        """The business deadline (from the saga's input) and the starter's trace id."""
        attributes = started.workflow_execution_started_event_attributes
        deadline_at = None
        decoded = await self.client.data_converter.decode(
            list(attributes.input.payloads), [SagaInput]
        )
        if decoded and isinstance(decoded[0], SagaInput):
            deadline_at = _seconds(started) + decoded[0].policy.deadline_s
        return deadline_at, _trace_id(attributes.header.fields.get(TRACE_HEADER))

    async def _alert(self, row: SagaRow, now: float, quiet_s: float, warn_s: float) -> Alert | None:
        """One candidate: its last history event, and its deadline (cached: it never moves)."""
        execution = WorkflowExecution(workflow_id=row.saga_id)
        try:
            last = await self.client.workflow_service.get_workflow_execution_history_reverse(
                GetWorkflowExecutionHistoryReverseRequest(
                    namespace=self.client.namespace, execution=execution, maximum_page_size=1
                ),
                timeout=RPC_TIMEOUT,
            )
            deadline_at = await self._deadline(execution)
        except RPCError:
            return None
        progress = _seconds(last.history.events[0]) if last.history.events else None
        kinds = alert_kinds(now, progress, deadline_at, quiet_s, warn_s)
        refusal = _refusal(last.history.events[0]) if last.history.events else None
        if refusal is not None:
            kinds = (*kinds, AlertKind.REFUSED)
        if not kinds:
            return None
        return Alert(
            row=row,
            kinds=kinds,
            last_progress_at=progress,
            deadline_at=deadline_at,
            reason=refusal,
        )

    async def _deadline(self, execution: WorkflowExecution) -> float | None:
        known = self._started.get(execution.workflow_id)
        if known is None:
            first = await self.client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=self.client.namespace, execution=execution, maximum_page_size=1
                ),
                timeout=RPC_TIMEOUT,
            )
            events = first.history.events
            known = await self._deadline_and_trace(events[0]) if events else (None, None)
            if len(self._started) > 10_000:
                self._started.clear()
            self._started[execution.workflow_id] = known
        return known[0]


def _listed(said: str | None) -> ListedStatus:
    """What the list shows for a ``SagaStatus``: a resolved saga as the way it ended."""
    if said == RESOLVED:
        return ListedStatus.NEEDS_INTERVENTION
    return ListedStatus(said or ListedStatus.RUNNING.value)


def _saga_row(execution: ListedExecution) -> SagaRow:
    found = execution.typed_search_attributes
    status = _listed(found.get(SAGA_STATUS))
    open_ = execution.status is WorkflowExecutionStatus.RUNNING
    step = found.get(SAGA_STEP)
    if not (status.in_flight or status is ListedStatus.NEEDS_INTERVENTION):
        step = None
    return SagaRow(
        variant=VARIANT,
        saga_id=execution.id,
        order_id=found.get(ORDER_ID) or "",
        status=status,
        reason=found.get(SAGA_REASON),
        step=step,
        started_at=execution.start_time.timestamp(),
        ended_at=None
        if open_ or execution.close_time is None
        else execution.close_time.timestamp(),
    )


async def _versioned(execution: ListedExecution) -> SagaRow:
    """The row, with the version of the definition the saga runs (its start memo)."""
    row = _saga_row(execution)
    try:
        definition = await execution.memo_value(DEFINITION_MEMO, None)
    except (KeyError, TypeError, ValueError):
        return row
    version = definition.get("version") if isinstance(definition, dict) else None
    return row.model_copy(update={"version": version}) if isinstance(version, str) else row


def _refusal(last: HistoryEvent) -> str | None:
    """The one line a worker refused the workflow with, when its last event says so: a
    workflow task failed for a definition the worker does not hold (it is retried, and waits
    for a worker that holds it)."""
    if not last.HasField("workflow_task_failed_event_attributes"):
        return None
    message = last.workflow_task_failed_event_attributes.failure.message
    return message if REFUSAL_MARK in message else None


async def _settled_at(execution: ListedExecution) -> float | None:
    """When the saga reached its present status (the workflow's memo), if it says."""
    try:
        value = await execution.memo_value(SETTLED_AT, None)
    except (KeyError, TypeError, ValueError):
        return None
    return float(value) if isinstance(value, int | float) else None


def _action(action: OperatorAction) -> ActionView:
    return ActionView(
        action=action.action.value,
        who=action.who,
        at=action.at,
        note=action.note,
        result=action.result.value,
    )


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def _event_name(event: HistoryEvent) -> str:
    words = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").split("_")
    return "".join(word.capitalize() for word in words)


def _text(payload: Payload) -> str:
    try:
        value = PayloadConverter.default.from_payload(payload, str)
    except Exception:
        return ""
    return value if isinstance(value, str) else ""


def _trace_id(payload: Payload | None) -> str | None:
    if payload is None:
        return None
    try:
        carrier: Any = json.loads(payload.data)
    except ValueError:
        return None
    return trace_id_of(carrier.get("traceparent")) if isinstance(carrier, dict) else None


def _entry(event: HistoryEvent) -> RawEntry:
    """One history event as a line: its type and what it names (activity, summary, failure)."""
    parts: list[str] = []
    if event.HasField("activity_task_scheduled_event_attributes"):
        parts.append(event.activity_task_scheduled_event_attributes.activity_type.name)
    if event.HasField("activity_task_started_event_attributes"):
        parts.append(f"attempt {event.activity_task_started_event_attributes.attempt}")
    if event.HasField("activity_task_failed_event_attributes"):
        parts.append(event.activity_task_failed_event_attributes.failure.message)
    if event.HasField("user_metadata") and event.user_metadata.HasField("summary"):
        parts.append(_text(event.user_metadata.summary))
    if event.HasField("upsert_workflow_search_attributes_event_attributes"):
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        parts += [f"{k}={_text(v)}" for k, v in sorted(fields.indexed_fields.items())]
    return RawEntry(
        at=_seconds(event), name=_event_name(event), detail=" ".join(p for p in parts if p)
    )


@dataclass(frozen=True)
class _Run:
    """One scheduling of an activity: when, until when (None in flight), how it closed."""

    start: float
    end: float | None
    status: StepStatus
    attempts: int


def _activity_times(events: Sequence[HistoryEvent]) -> dict[str, list[_Run]]:
    """Each activity's runs in order: a compensation an operator retried ran once per round
    (its attempts within a round are retries of one scheduling)."""
    scheduled: dict[int, tuple[str, int]] = {}
    attempts: dict[int, int] = {}
    runs: dict[str, list[_Run]] = {}
    for event in events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            runs.setdefault(name, []).append(_Run(_seconds(event), None, StepStatus.RUNNING, 0))
            scheduled[event.event_id] = (name, len(runs[name]) - 1)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            attempts[started.scheduled_event_id] = started.attempt
        elif event.event_type in _STEP_EVENTS:
            scheduled_id = _scheduled_id(event)
            if scheduled_id in scheduled:
                name, index = scheduled[scheduled_id]
                run = runs[name][index]
                runs[name][index] = _Run(
                    run.start,
                    _seconds(event),
                    _STEP_EVENTS[event.event_type],
                    attempts.get(scheduled_id, 1),
                )
    return runs


def _scheduled_id(event: HistoryEvent) -> int:
    for field in (
        "activity_task_completed_event_attributes",
        "activity_task_failed_event_attributes",
        "activity_task_timed_out_event_attributes",
        "activity_task_canceled_event_attributes",
    ):
        if event.HasField(field):
            return int(getattr(event, field).scheduled_event_id)
    return -1


def _timeline(outcome: SagaOutcome | None, events: Sequence[HistoryEvent]) -> list[StepView]:
    """The workflow's steps with times from the history (the history alone without a worker);
    each earlier round of a retried compensation is a view of its own, before the latest."""
    runs = _activity_times(events)
    if outcome is None:
        return [
            _view(name, "", run, number)
            for name, found in runs.items()
            for number, run in enumerate(found)
        ]
    views = []
    for state in outcome.steps:
        found = runs.get(str(state.step), [])
        views += [
            _view(str(state.step), state.phase.value, run, n) for n, run in enumerate(found[:-1])
        ]
        last = found[-1] if found else None
        views.append(
            StepView(
                step=str(state.step),
                phase=state.phase.value,
                status=state.status.value,
                attempts=state.attempts,
                started_at=last.start if last else None,
                ended_at=last.end if last else None,
                round=max(0, len(found) - 1),
            )
        )
    return views


def _view(step: str, phase: str, run: _Run, round: int) -> StepView:
    return StepView(
        step=step,
        phase=phase,
        status=run.status.value,
        attempts=run.attempts,
        started_at=run.start,
        ended_at=run.end,
        round=round,
    )
