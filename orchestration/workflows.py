"""OrderSagaWorkflow: sequences the saga's steps as activities and keeps the compensation stack.

Rules live in shared/services (run by the activities); this module only decides what runs
next. It imports stdlib, temporalio and pass-through project modules only: the workflow
sandbox re-imports it, and replay must see the same decisions.

It also tells the Temporal UI the truth (orchestration/visibility.py): search attributes
upserted as the saga moves, and a one-line summary on every activity it schedules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from orchestration.messages import (
        CLOSE_ORDER,
        NON_RETRYABLE,
        PLACE_ORDER,
        STEP_REJECTED,
        WORKFLOW_NAME,
        CloseCall,
        FailureDetail,
        PlaceCall,
        SagaInput,
        StepCall,
        StepDone,
    )
    from orchestration.progress import SagaProgress
    from orchestration.visibility import (
        COMPENSATING,
        ORDER_ID,
        SAGA_REASON,
        SAGA_STATUS,
        SAGA_STEP,
        activity_summary,
    )
    from shared.contracts import Reason, SagaOutcome, SagaPolicy, SagaStatus, StepStatus

T = TypeVar("T")


class StepFailed(Exception):
    """A forward step said no (or its retries ended): the saga turns to compensation."""

    def __init__(self, step: str, reason: Reason | None) -> None:
        super().__init__(f"{step} failed: {reason}")
        self.step = step
        self.reason = reason


def retry_policy(policy: SagaPolicy, maximum_attempts: int = 0) -> RetryPolicy:
    """The saga's backoff as a Temporal RetryPolicy (0 attempts = unlimited)."""
    initial = min(policy.initial_backoff_s, policy.max_backoff_s)
    return RetryPolicy(
        initial_interval=timedelta(seconds=initial),
        backoff_coefficient=policy.backoff_factor,
        maximum_interval=timedelta(seconds=policy.max_backoff_s),
        maximum_attempts=maximum_attempts,
        non_retryable_error_types=list(NON_RETRYABLE),
    )


async def uncancellable(aw: Awaitable[T], on_cancel: Callable[[], None] | None = None) -> T:
    """Await to completion even if the workflow is cancelled meanwhile (a BaseException)."""
    task = asyncio.ensure_future(aw)
    while True:
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            if on_cancel is not None:
                on_cancel()


def failure_detail(error: ActivityError, budget: int) -> FailureDetail:
    """Why an activity failed for good and after how many attempts."""
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.details:
        return FailureDetail.model_validate(cause.details[0])
    exhausted = error.retry_state is RetryState.MAXIMUM_ATTEMPTS_REACHED
    return FailureDetail(attempt=budget if exhausted else 1)


@workflow.defn(name=WORKFLOW_NAME)
class OrderSagaWorkflow:
    """One order's saga: place, forward steps, and on failure compensations in reverse order."""

    @workflow.init
    def __init__(self, saga: SagaInput) -> None:
        self._saga = saga
        self._spec = saga.saga
        self._progress = SagaProgress(saga.saga_id, saga.order, saga.saga)
        self._compensations: list[str] = []
        self._past_pivot = False
        self._stop: Reason | None = None
        self._interrupted = False

    @workflow.run
    async def run(self, saga: SagaInput) -> SagaOutcome:
        if workflow.info().typed_search_attributes.get(ORDER_ID) is None:
            # Started without the runtime's start attributes: the saga still shows its order.
            self._show(status=SagaStatus.RUNNING.value, order_id=saga.order.order_id)
        deadline = asyncio.create_task(self._deadline())
        await self._settle(self._activity(PLACE_ORDER, PlaceCall(order=saga.order)))
        forward = asyncio.create_task(self._forward())
        try:
            stop = await self._watch(forward)
        finally:
            deadline.cancel()
        if stop is not None:
            await self._interrupt(forward, stop)
            return await self._compensate(stop)
        try:
            await self._settle(forward)
        except StepFailed as failure:
            if self._past_pivot:
                # After the pivot there is nothing to undo; only a person can finish the order.
                return await self._close(SagaStatus.NEEDS_INTERVENTION, None)
            return await self._compensate(failure.reason)
        return self._end(SagaStatus.COMPLETED)

    @workflow.signal
    def cancel(self) -> None:
        """The customer's cancel: honoured before the pivot, ignored after it."""
        self._request_stop(Reason.CANCELLED_BY_CUSTOMER)

    @workflow.query
    def describe(self) -> SagaOutcome:
        """The saga's live state: status, each step's status and attempts so far."""
        return self._progress.outcome()

    def _request_stop(self, reason: Reason) -> None:
        if not self._past_pivot and self._stop is None:
            self._stop = reason

    def _cancelled(self) -> None:
        self._request_stop(Reason.CANCELLED_BY_CUSTOMER)

    async def _settle(self, aw: Awaitable[T]) -> T:
        """Await work that must finish; a workflow cancellation meanwhile counts as a cancel."""
        return await uncancellable(aw, self._cancelled)

    async def _deadline(self) -> None:
        """The business deadline as a durable timer, measured from the saga's start."""
        elapsed = workflow.now() - workflow.info().workflow_start_time
        remaining = self._saga.policy.deadline_s - elapsed.total_seconds()
        if remaining > 0:
            await workflow.sleep(remaining, summary="business deadline")
        self._request_stop(Reason.TIMED_OUT)

    async def _watch(self, forward: asyncio.Task[None]) -> Reason | None:
        """Wait until the forward steps end, pass the pivot, or a stop is requested."""
        while True:
            try:
                await workflow.wait_condition(
                    lambda: forward.done() or self._past_pivot or self._stop is not None
                )
            except asyncio.CancelledError:
                # Workflow cancellation is the customer's cancel; compensation must still run.
                self._cancelled()
                continue
            return None if forward.done() or self._past_pivot else self._stop

    async def _interrupt(self, forward: asyncio.Task[None], reason: Reason) -> None:
        """Stop the forward steps and wait until the attempt in flight has ended."""
        self._progress.interrupt(reason)
        self._interrupted = True
        forward.cancel()
        await self._settle(workflow.wait([forward]))

    async def _forward(self) -> None:
        for step in self._spec.forward_steps:
            if self._interrupted:
                return
            if not self._spec.applies(step, self._saga.order):
                continue
            compensation = self._spec.compensation_of(step)
            if compensation is not None:
                # Registered before the call: an attempt that timed out may still have acted.
                self._compensations.append(compensation)
            await self._forward_step(step)
            if step == self._spec.pivot:
                self._past_pivot = True

    async def _forward_step(self, step: str) -> None:
        self._progress.start(step)
        self._show(step=step)
        try:
            done = await self._step(step, maximum_attempts=0)
        except ActivityError as error:
            business = _error_type(error) in NON_RETRYABLE
            if self._interrupted and not business:
                return  # cancelled or timed out mid-attempt: its compensation tells if it acted
            detail = failure_detail(error, budget=1)
            rejected = _error_type(error) == STEP_REJECTED
            if self._interrupted:
                # The saga is already being cancelled; this failure does not change its reason.
                status = StepStatus.REJECTED if rejected else StepStatus.FAILED
                self._progress.finish(step, status, detail.attempt)
                return
            self._progress.fail(step, detail.reason, detail.attempt, rejected)
            raise StepFailed(step, detail.reason) from None
        self._progress.finish(step, StepStatus.DONE, done.attempt)

    async def _compensate(self, reason: Reason | None) -> SagaOutcome:
        """Run every registered compensation in reverse order, whatever happens meanwhile."""
        self._show(status=COMPENSATING, reason=reason)
        await self._settle(self._compensate_all())
        failed = bool(self._progress.failed_compensations)
        status = SagaStatus.NEEDS_INTERVENTION if failed else SagaStatus.COMPENSATED
        return await self._close(status, reason)

    async def _close(self, status: SagaStatus, reason: Reason | None) -> SagaOutcome:
        """Record the saga's non-COMPLETED end in the orders service, then report it."""
        close = CloseCall(status=status, reason=reason)
        summary = f"close order: {status.value}" + (f" ({reason.value})" if reason else "")
        await self._settle(self._activity(CLOSE_ORDER, close, summary=summary))
        return self._end(status)

    async def _compensate_all(self) -> None:
        budget = self._saga.policy.compensation_attempts
        for compensation in reversed(self._compensations):
            self._progress.start_compensation(compensation)
            self._show(step=compensation)
            try:
                done = await self._step(compensation, maximum_attempts=budget)
            except ActivityError as error:
                # A failed compensation is recorded and surfaced; the others still run.
                attempts = failure_detail(error, budget).attempt
                self._progress.finish_compensation(compensation, StepStatus.FAILED, attempts)
                continue
            self._progress.finish_compensation(compensation, done.result.status, done.attempt)

    async def _step(self, step: str, *, maximum_attempts: int) -> StepDone:
        call = StepCall(order=self._saga.order, faults=self._saga.faults)
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
        result: T = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(seconds=policy.attempt_timeout_s),
            retry_policy=retry_policy(policy, maximum_attempts),
            # A cancelled step is waited for, so no effect is still in flight at the outcome.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=summary or activity_summary(name, compensating=False, reason=None),
        )
        return result

    def _end(self, status: SagaStatus) -> SagaOutcome:
        self._progress.end(status)
        outcome = self._progress.outcome()
        self._show(status=status.value, step=_needs_a_person(outcome), reason=outcome.reason)
        return outcome

    def _show(
        self,
        *,
        status: str | None = None,
        step: str | None = None,
        reason: Reason | None = None,
        order_id: str | None = None,
    ) -> None:
        """Upsert what the UI lists and filters by: status, step in flight, reason, order."""
        pairs = [(SAGA_STATUS, status), (SAGA_STEP, step), (SAGA_REASON, reason)]
        pairs.append((ORDER_ID, order_id))
        updates = [key.value_set(str(value)) for key, value in pairs if value is not None]
        if updates:
            workflow.upsert_search_attributes(updates)


def _needs_a_person(outcome: SagaOutcome) -> str | None:
    """The step a person must finish: the first failed compensation, or the step past the pivot."""
    if outcome.status is not SagaStatus.NEEDS_INTERVENTION:
        return None
    failed = outcome.failed_compensations
    return failed[0] if failed else outcome.failed_step


def _error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None
