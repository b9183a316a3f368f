"""OrderSagaWorkflow: sequences the saga's steps as activities and keeps the compensation stack.

Rules live in shared/services (run by the activities); this module only decides what runs
next, for the saga spec it receives in its input. It imports stdlib, temporalio and
pass-through project modules only: the workflow sandbox re-imports it, and replay must see the
same decisions.

- **Placement**: the order is admitted and placed by the first activity (the catalogue, the
  customer records and the worker's limits on the policy judge what the input says:
  shared/admission.py); a refused order ends the saga REJECTED with its reason, before any
  step. The runtime starts the workflow with the ``place`` update (update-with-start), which
  reports a duplicate order id at once.
- **Cancel and deadline** (the cancel signal, a workflow cancellation, the deadline timer)
  count only while the saga goes forward and before its pivot. One that lands while a step is
  in flight *fences* that step through its own service (activity ``fence_step``, the same
  fence as the choreography's): a step that had not committed is refused and the saga
  compensates; a step that committed first is compensated like the others — unless it is the
  pivot, whose commit wins: the cancel is void and the saga completes. The earliest cause
  decides the reason (a step that failed before the cancel keeps its own).
- **Waiting for an operator**: a saga that ends NEEDS_INTERVENTION keeps its workflow open,
  waiting durably for the ``retry_compensation``, ``retry_step`` or ``resolve`` update; each
  action is recorded in the outcome. ``settled`` returns the outcome once it is settled.

It also tells the Temporal UI the truth (orchestration/visibility.py): search attributes
upserted as the saga moves, and a one-line summary on every activity it schedules.

**Releases** (docs/versioning.md). `OrderSagaWorkflow` is release 1's code. Release 2 also
shows what each step reported in the workflow's memo (``results``: the charge's amount as
money), a new command after each step, which a history of release 1 does not have:
`OrderSagaWorkflowV2` guards it with ``workflow.patched`` so release 1's sagas replay;
`UnpatchedOrderSagaWorkflowV2` is the same change written without a thought for the sagas in
flight (what a worker pinned to its own version may run, and the "no versioning" arm).
`workflow_for` picks one per worker from its definition's release and its versioning setting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from orchestration.messages import (
        CLOSE_ORDER,
        DUPLICATE_ORDER,
        FENCE_STEP,
        LOCAL,
        NOT_WAITING,
        ORDER_REJECTED,
        PLACE_ORDER,
        STEP_REJECTED,
        WORKFLOW_NAME,
        CloseCall,
        FenceCall,
        OperatorCall,
        PlaceCall,
        SagaInput,
        StepCall,
        StepDone,
    )
    from orchestration.progress import SagaProgress
    from orchestration.sequencing import (
        Ending,
        StepFailed,
        Stop,
        Ticket,
        error_type,
        failure_detail,
        retry_policy,
        uncancellable,
    )
    from orchestration.visibility import (
        COMPENSATING,
        ORDER_ID,
        RESOLVED,
        SAGA_REASON,
        SAGA_STATUS,
        SAGA_STEP,
        activity_summary,
    )
    from shared.contracts import (
        Action,
        ActionResult,
        OperatorAction,
        Reason,
        ReasonId,
        SagaOutcome,
        SagaStatus,
        StepStatus,
        as_reason,
    )
    from shared.services.audit import reported
    from shared.services.base import Fence

T = TypeVar("T")

SETTLED_AT = "settled_at"
"""Memo key: epoch seconds when the saga reached its present settled status."""
SETTLED_MEMO = "settled-at-memo"
"""Patch id: workflows started before the memo existed replay without it."""
RESULTS = "results"
"""Memo key (release 2): what each forward step reported, by step (the charge in money)."""
RESULTS_PATCH = "v2-step-results"
"""Patch id of release 2's results memo: a saga started by release 1 replays without it."""
PATCHING = ("patched", "auto-upgrade")
"""Workflow versioning settings whose workers run the patched code (docs/versioning.md)."""
RESOLVED_STATUS = "resolved-search-status"
"""Patch id: a resolve recorded before ``SagaStatus = RESOLVED`` existed replays without it."""

__all__ = [
    "OrderSagaWorkflow",
    "OrderSagaWorkflowV2",
    "UnpatchedOrderSagaWorkflowV2",
    "retry_policy",
    "workflow_for",
]


@workflow.defn(name=WORKFLOW_NAME)
class OrderSagaWorkflow:
    """One order's saga: place, forward steps, on failure compensations in reverse order."""

    @workflow.init
    def __init__(self, saga: SagaInput) -> None:
        self._saga = saga
        self._spec = saga.saga
        self._progress = SagaProgress(saga.saga_id, saga.order, saga.saga)
        self._compensations: list[str] = []
        self._going_forward = True
        self._past_pivot = False
        self._stop: Stop | None = None
        self._placed: bool | None = None
        self._holder = ""
        """The saga that holds the order id, when placement was refused."""
        self._rejected: ReasonId | None = None
        """Why the first activity refused the order (the saga ends REJECTED)."""
        self._tickets: list[Ticket] = []
        self._performing = False
        self._round = 0
        self._settled_as: SagaStatus | None = None
        self._results: dict[str, dict[str, Any]] = {}

    @workflow.run
    async def run(self, saga: SagaInput) -> SagaOutcome:
        if workflow.info().typed_search_attributes.get(ORDER_ID) is None:
            # Started without the runtime's start attributes: the saga still shows its order.
            self._show(status=SagaStatus.RUNNING.value, order_id=saga.order.order_id)
        deadline = asyncio.create_task(self._deadline())
        self._placed = await self._place()
        if self._placed and self._saga.activities == LOCAL:
            # The starter waits for the ``place`` update, answered only when a workflow task
            # completes; local steps would otherwise keep this one open until the pivot.
            await self._checkpoint()
        if not self._placed:
            deadline.cancel()
            await workflow.wait_condition(workflow.all_handlers_finished)
            raise self._duplicate()
        if self._rejected is not None:
            deadline.cancel()
            self._progress.reject(self._rejected)
            outcome = self._end(SagaStatus.REJECTED)
            await workflow.wait_condition(workflow.all_handlers_finished)
            return outcome
        try:
            ending = await self._forward()
        finally:
            self._going_forward = False
            deadline.cancel()
        outcome = await self._conclude(ending)
        if outcome.status is SagaStatus.NEEDS_INTERVENTION:
            outcome = await self._serve_operators()
        for ticket in self._tickets:
            ticket.refused = True  # queued behind the action that ended the wait
        self._tickets.clear()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return outcome

    # -- messages ---------------------------------------------------------------------------

    @workflow.update
    async def place(self) -> None:
        """Placement's answer, for update-with-start: returns once placed, fails if a duplicate."""
        await workflow.wait_condition(lambda: self._placed is not None)
        if not self._placed:
            raise self._duplicate()

    @workflow.signal
    def cancel(self) -> None:
        """The customer's cancel: honoured before the pivot, void once the pivot committed."""
        self._request_stop(Reason.CANCELLED_BY_CUSTOMER)

    @workflow.query
    def describe(self) -> SagaOutcome:
        """The saga's live state: status, each step's status and attempts so far."""
        if self._placed is False:
            raise self._duplicate()
        return self._progress.outcome()

    @workflow.update
    async def settled(self) -> SagaOutcome:
        """The outcome once settled: COMPLETED, COMPENSATED, or waiting for an operator."""
        await workflow.wait_condition(
            lambda: self._progress.status.terminal or self._placed is False
        )
        if self._placed is False:
            raise self._duplicate()
        return self._progress.outcome()

    @workflow.update
    async def retry_compensation(self, call: OperatorCall) -> OperatorAction:
        """An operator retries every failed compensation (a fresh budget, the next round)."""
        return await self._queue(Action.RETRY_COMPENSATION, call)

    @workflow.update
    async def retry_step(self, call: OperatorCall) -> OperatorAction:
        """An operator runs the failed step past the pivot again (a fresh attempt, the next
        round), and the steps after it: the saga completes, or still waits."""
        return await self._queue(Action.RETRY_STEP, call)

    @workflow.update
    async def resolve(self, call: OperatorCall) -> OperatorAction:
        """An operator finished the saga by hand: recorded, and the workflow closes."""
        return await self._queue(Action.RESOLVE, call)

    @retry_compensation.validator
    def _retry_allowed(self, call: OperatorCall) -> None:
        self._check_waiting()

    @retry_step.validator
    def _retry_step_allowed(self, call: OperatorCall) -> None:
        self._check_waiting()

    @resolve.validator
    def _resolve_allowed(self, call: OperatorCall) -> None:
        self._check_waiting()

    # -- placement, deadline, stops -------------------------------------------------------

    async def _place(self) -> bool:
        """Admit and record the order; False when another saga holds its order id. A refused
        order is a saga too (it ends REJECTED): ``_rejected`` says why."""
        try:
            place = PlaceCall(order=self._saga.order, policy=self._saga.policy)
            await self._settle(self._activity(PLACE_ORDER, place, summary="place order"))
        except ActivityError as error:
            cause = error.cause
            details = cause.details if isinstance(cause, ApplicationError) else ()
            if error_type(error) == DUPLICATE_ORDER:
                self._holder = str(details[0]) if details else ""
                return False
            if error_type(error) == ORDER_REJECTED:
                self._rejected = as_reason(str(details[0])) if details else "rejected"
                return True
            raise
        return True

    def _duplicate(self) -> ApplicationError:
        order_id = self._saga.order.order_id
        message = f"order_id: order {order_id!r} is placed already (saga {self._holder})"
        return ApplicationError(message, self._holder, type=DUPLICATE_ORDER)

    async def _deadline(self) -> None:
        """The business deadline as a durable timer, measured from the saga's start."""
        started = workflow.info().workflow_start_time
        remaining = self._saga.policy.deadline_s - (workflow.now() - started).total_seconds()
        if remaining > 0:
            await workflow.sleep(remaining, summary="business deadline")
        self._request_stop(Reason.TIMED_OUT, started.timestamp() + self._saga.policy.deadline_s)

    def _request_stop(self, reason: Reason, at: float | None = None) -> None:
        if self._going_forward and not self._past_pivot and self._stop is None:
            self._stop = Stop(reason, workflow.now().timestamp() if at is None else at)

    def _cancelled(self) -> None:
        """A workflow cancellation is the customer's cancel; compensation must still run."""
        self._request_stop(Reason.CANCELLED_BY_CUSTOMER)

    async def _settle(self, aw: Awaitable[T]) -> T:
        """Await work that must finish; a workflow cancellation meanwhile counts as a cancel."""
        return await uncancellable(aw, self._cancelled)

    async def _until(self, condition: Callable[[], bool]) -> None:
        """Wait for a condition; a workflow cancellation meanwhile counts as a cancel."""
        while True:
            try:
                return await workflow.wait_condition(condition)
            except asyncio.CancelledError:
                self._cancelled()

    # -- forward ----------------------------------------------------------------------------

    async def _forward(self) -> Ending:
        """Every step that applies, in order, until a stop, a failure or the end."""
        for step in self._spec.forward_steps:
            if not self._spec.applies(step, self._saga.order):
                continue
            if step == self._spec.pivot and self._saga.activities == LOCAL:
                await self._checkpoint()
            if self._stop is not None:
                return Ending(stop=self._stop)
            compensation = self._spec.compensation_of(step)
            if compensation is not None:
                # Registered before the call: an attempt that timed out may still have acted.
                self._compensations.append(compensation)
            try:
                status = await self._forward_step(step)
            except StepFailed as failure:
                first = self._stop is not None and self._stop.at <= failure.at
                return Ending(stop=self._stop) if first else Ending(failure=failure)
            if status is StepStatus.REJECTED and compensation is not None:
                self._compensations.remove(compensation)  # fenced: nothing to undo
            if step == self._spec.pivot and status is StepStatus.DONE:
                self._past_pivot, self._stop = True, None  # the pivot's commit wins
        return Ending()

    async def _checkpoint(self) -> None:
        """End the workflow task (local activities only): after placement, and before the pivot.

        Local activities run inside one workflow task; an update's answer leaves, and a signal
        or timer that arrives meanwhile is delivered, only when a task ends. Without this the
        starter would wait for placement until the pivot is scheduled, and a cancel sent while
        the step before the pivot runs would first be seen with the pivot in flight (a pivot
        that commits would void it): a cancel would mean less than with remote activities.
        A one-millisecond durable timer ends the task; the next one brings what arrived.
        """
        await self._settle(workflow.sleep(0.001, summary="end the workflow task"))

    async def _forward_step(self, step: str) -> StepStatus:
        """Run one step; a stop while it is in flight fences it through its service first."""
        self._progress.start(step)
        self._show(step=step)
        task = asyncio.ensure_future(self._step(step, maximum_attempts=0))
        await self._until(lambda: task.done() or self._stop is not None)
        if not task.done():
            await self._fence(step)
        try:
            done = await self._settle(task)
        except ActivityError as error:
            detail = failure_detail(error, budget=1)
            rejected = error_type(error) == STEP_REJECTED
            ended = StepStatus.REJECTED if rejected else StepStatus.FAILED
            self._progress.finish(step, ended, detail.attempt)
            if rejected and self._stop is not None:
                return StepStatus.REJECTED
            raise StepFailed(step, detail) from None
        self._progress.finish(step, StepStatus.DONE, done.attempt)
        self._step_done(step, done)
        return StepStatus.DONE

    def _step_done(self, step: str, done: StepDone) -> None:
        """What a release does once a forward step is done (release 1: nothing more)."""

    def _show_result(self, step: str, done: StepDone) -> None:
        """Release 2: the step's report joins the ``results`` memo (one command per step)."""
        report = reported(done.result.detail)
        if report:
            self._results[step] = report
            workflow.upsert_memo({RESULTS: self._results})

    async def _fence(self, step: str) -> None:
        """Tombstone the step in flight unless it committed; a committed pivot voids the stop."""
        call = FenceCall(step=step)
        summary = f"fence {step.replace('_', ' ')}"
        found = await self._settle(self._activity(FENCE_STEP, call, Fence, summary=summary))
        if found is Fence.ACTED and step == self._spec.pivot:
            self._stop = None

    # -- the end --------------------------------------------------------------------------

    async def _conclude(self, ending: Ending) -> SagaOutcome:
        if ending.stop is not None:
            self._progress.interrupt(ending.stop.reason)
            return await self._compensate(ending.stop.reason)
        failure = ending.failure
        if failure is None:
            return self._end(SagaStatus.COMPLETED)
        if self._spec.after_pivot(failure.step):
            # After the pivot there is nothing to undo; only a person can finish the order.
            self._progress.blame(failure.step, None)
            return await self._close(SagaStatus.NEEDS_INTERVENTION, None)
        self._progress.blame(failure.step, failure.reason)
        return await self._compensate(failure.reason)

    async def _compensate(self, reason: ReasonId | None) -> SagaOutcome:
        """Run every registered compensation in reverse order, whatever happens meanwhile."""
        self._show(status=COMPENSATING, reason=reason)
        await self._settle(self._undo(list(reversed(self._compensations))))
        return await self._close(self._after_compensations(), reason)

    def _after_compensations(self) -> SagaStatus:
        failed = bool(self._progress.failed_compensations)
        return SagaStatus.NEEDS_INTERVENTION if failed else SagaStatus.COMPENSATED

    async def _close(self, status: SagaStatus, reason: ReasonId | None) -> SagaOutcome:
        """Record the saga's non-COMPLETED end in the orders service, then report it."""
        close = CloseCall(status=status, reason=reason)
        summary = f"close order: {status.value}" + (f" ({reason})" if reason else "")
        await self._settle(self._activity(CLOSE_ORDER, close, summary=summary))
        return self._end(status)

    async def _undo(self, compensations: list[str]) -> None:
        """Run compensations one by one; a failed one is recorded and the others still run."""
        budget = self._saga.policy.compensation_attempts
        for compensation in compensations:
            self._progress.start_compensation(compensation)
            self._show(step=compensation)
            try:
                done = await self._step(compensation, maximum_attempts=budget)
            except ActivityError as error:
                attempts = failure_detail(error, budget).attempt
                self._progress.finish_compensation(compensation, StepStatus.FAILED, attempts)
                continue
            self._progress.finish_compensation(compensation, done.result.status, done.attempt)

    # -- operators --------------------------------------------------------------------------

    def _check_waiting(self) -> None:
        """Updates are refused (not recorded) unless the saga waits for an operator."""
        current = self._progress.outcome()
        busy = bool(self._tickets) or self._performing
        if current.status is not SagaStatus.NEEDS_INTERVENTION or current.resolved or busy:
            state = "resolved" if current.resolved else current.status.value
            state = "being retried" if busy else state
            message = f"saga {self._saga.saga_id} does not wait for an operator (it is {state})"
            raise ApplicationError(message, type=NOT_WAITING)

    async def _queue(self, action: Action, call: OperatorCall) -> OperatorAction:
        """Hand the request to the run loop (actions run one at a time), wait for its result."""
        requested = OperatorAction(
            action=action, who=call.who, at=workflow.now().timestamp(), note=call.note
        )
        ticket = Ticket(requested)
        self._tickets.append(ticket)
        await workflow.wait_condition(lambda: ticket.answered)
        if ticket.performed is None:
            self._check_waiting()
        assert ticket.performed is not None
        return ticket.performed

    async def _serve_operators(self) -> SagaOutcome:
        """Wait durably for operators until a retry compensates or completes the saga, or one
        resolves it."""
        while True:
            await self._until(lambda: bool(self._tickets))
            ticket = self._tickets.pop(0)
            self._performing = True
            performed = await self._perform(ticket.action)
            self._performing = False
            self._progress.actions.append(performed)
            ticket.performed = performed
            if performed.result in _SETTLING:
                return self._progress.outcome()

    async def _perform(self, requested: OperatorAction) -> OperatorAction:
        """Resolve, retry the failed step past the pivot, or retry every failed compensation
        in reverse order (the next round)."""
        if requested.action is Action.RESOLVE:
            if workflow.patched(RESOLVED_STATUS):
                self._show(status=RESOLVED)  # out of the NEEDS_INTERVENTION list filter
            return requested.model_copy(update={"result": ActionResult.RESOLVED})
        if requested.action is Action.RETRY_STEP:
            return await self._retry_onward(requested)
        still = self._progress.failed_compensations
        failed = [c for c in reversed(self._compensations) if c in still]
        if not failed:
            return requested.model_copy(update={"result": ActionResult.NOTHING_TO_RETRY})
        self._round += 1
        await self._settle(self._undo(failed))
        done = {"round": self._round, "result": ActionResult.STILL_FAILING}
        if self._after_compensations() is SagaStatus.COMPENSATED:
            await self._close(SagaStatus.COMPENSATED, self._progress.reason)
            done["result"] = ActionResult.COMPENSATED
        else:
            self._end(SagaStatus.NEEDS_INTERVENTION)
        return requested.model_copy(update=done)

    async def _retry_onward(self, requested: OperatorAction) -> OperatorAction:
        """Run the failed step past the pivot again, then the steps after it (the next round):
        past the pivot the saga only goes forward, so a success completes it."""
        failed = self._progress.failed_step
        if failed is None or not self._spec.after_pivot(failed):
            return requested.model_copy(update={"result": ActionResult.NOTHING_TO_RETRY})
        self._round += 1
        done = {"round": self._round, "result": ActionResult.COMPLETED}
        for step in self._spec.forward_steps[self._spec.index(failed) :]:
            if not self._spec.applies(step, self._saga.order):
                continue
            self._progress.start(step)
            self._show(step=step)
            try:
                ran = await self._settle(self._step(step, maximum_attempts=0))
            except ActivityError as error:
                self._progress.finish(step, StepStatus.FAILED, failure_detail(error, 1).attempt)
                self._progress.blame(step, None)
                self._end(SagaStatus.NEEDS_INTERVENTION)
                done["result"] = ActionResult.STILL_FAILING
                return requested.model_copy(update=done)
            self._progress.finish(step, StepStatus.DONE, ran.attempt)
        self._progress.blame(None, None)  # nothing failed in the end
        self._end(SagaStatus.COMPLETED)
        return requested.model_copy(update=done)

    # -- activities ---------------------------------------------------------------------------

    async def _step(self, step: str, *, maximum_attempts: int) -> StepDone:
        call = StepCall(order=self._saga.order, round=self._round)
        compensating = bool(self._progress.compensations)
        summary = activity_summary(step, compensating=compensating, reason=self._progress.reason)
        return await self._activity(step, call, StepDone, maximum_attempts, summary)

    async def _activity(
        self,
        name: str,
        arg: Any,
        result_type: type[T] | None = None,
        maximum_attempts: int = 0,
        summary: str | None = None,
    ) -> T:
        policy = self._saga.policy
        options: dict[str, Any] = {
            "result_type": result_type,
            "start_to_close_timeout": timedelta(seconds=policy.attempt_timeout_s),
            "retry_policy": retry_policy(policy, maximum_attempts),
            # Nothing cancels a step (a stop fences it instead); kept so a workflow cancelled
            # by hand never leaves an attempt running behind its outcome.
            "cancellation_type": workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            "summary": summary or activity_summary(name, compensating=False, reason=None),
        }
        if self._runs_locally(name):
            local: T = await local_activity(name, arg, options)
            return local
        result: T = await workflow.execute_activity(name, arg, **options)
        return result

    def _runs_locally(self, name: str) -> bool:
        """Local mode runs every activity in the worker except the pivot and what follows it.

        Local activities are recorded in the history only when their workflow task completes;
        a task that fails (a signal came in as it tried to complete the saga, a crashed worker)
        runs again from the history, possibly down another path. Before the pivot that is
        harmless: every step is idempotent and has a compensation. The pivot's outcome decides
        whether the saga may still compensate, so it must be in the history before anything
        after it runs, and a stop must be seen while it is in flight (to fence it): those run
        remotely. Which activity is the pivot comes from the saga spec, as every step does.
        """
        return self._saga.activities == LOCAL and not self._past_pivot and name != self._spec.pivot

    def _end(self, status: SagaStatus) -> SagaOutcome:
        self._progress.end(status)
        outcome = self._progress.outcome()
        self._show(status=status.value, step=_needs_a_person(outcome), reason=outcome.reason)
        if status is not self._settled_as and workflow.patched(SETTLED_MEMO):
            # When the saga reached this status (a retry that still fails leaves it as it
            # was, as the tracker does): a saga waiting for an operator keeps its workflow
            # open, so its close time cannot say when it settled (the monitor's counters).
            self._settled_as = status
            workflow.upsert_memo({SETTLED_AT: workflow.now().timestamp()})
        return outcome

    def _show(
        self,
        *,
        status: str | None = None,
        step: str | None = None,
        reason: ReasonId | None = None,
        order_id: str | None = None,
    ) -> None:
        """Upsert what the UI lists and filters by: status, step in flight, reason, order."""
        pairs = [(SAGA_STATUS, status), (SAGA_STEP, step), (SAGA_REASON, reason)]
        pairs.append((ORDER_ID, order_id))
        updates = [key.value_set(str(value)) for key, value in pairs if value is not None]
        if updates:
            workflow.upsert_search_attributes(updates)


@workflow.defn(name=WORKFLOW_NAME)
class OrderSagaWorkflowV2(OrderSagaWorkflow):
    """Release 2, patched: a saga that reached a step under release 1 replays unchanged."""

    @workflow.run
    async def run(self, saga: SagaInput) -> SagaOutcome:
        return await super().run(saga)

    def _step_done(self, step: str, done: StepDone) -> None:
        if workflow.patched(RESULTS_PATCH):
            self._show_result(step, done)


@workflow.defn(name=WORKFLOW_NAME)
class UnpatchedOrderSagaWorkflowV2(OrderSagaWorkflow):
    """Release 2 as written without the sagas in flight in mind: replaying a history of
    release 1 past a finished step fails (the memo's command is not in that history)."""

    @workflow.run
    async def run(self, saga: SagaInput) -> SagaOutcome:
        return await super().run(saga)

    def _step_done(self, step: str, done: StepDone) -> None:
        self._show_result(step, done)


def workflow_for(release: int, versioning: str) -> type[OrderSagaWorkflow]:
    """The workflow code a worker runs: its definition's release, patched or not."""
    if release < 2:
        return OrderSagaWorkflow
    return OrderSagaWorkflowV2 if versioning in PATCHING else UnpatchedOrderSagaWorkflowV2


async def local_activity(name: str, arg: Any, options: dict[str, Any]) -> Any:
    """A local activity, failing the way a remote one does.

    The SDK hands a local activity's application failure to the workflow bare, where a remote
    one's arrives inside an ActivityError (a timeout is an ActivityError either way): wrapped
    here, the saga reads both modes alike.
    """
    try:
        return await workflow.execute_local_activity(name, arg, **options)
    except ApplicationError as failure:
        raise ActivityError(
            f"local activity {name} failed",
            scheduled_event_id=0,
            started_event_id=0,
            identity="",
            activity_type=name,
            activity_id="",
            retry_state=None,
        ) from failure


_SETTLING = (ActionResult.COMPENSATED, ActionResult.COMPLETED, ActionResult.RESOLVED)
"""Action results after which the saga no longer waits for an operator."""


def _needs_a_person(outcome: SagaOutcome) -> str | None:
    """The step a person must finish: the first failed compensation, or the step past the pivot."""
    if outcome.status is not SagaStatus.NEEDS_INTERVENTION:
        return None
    failed = outcome.failed_compensations
    return failed[0] if failed else outcome.failed_step
