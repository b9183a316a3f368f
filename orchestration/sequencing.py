"""Deterministic helpers of the saga workflow: retry policy, causes, failures, shielded awaits.

Imported by the workflow (pass-through): stdlib, temporalio and contracts only, no I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

from orchestration.messages import NON_RETRYABLE, FailureDetail
from shared.contracts import OperatorAction, ReasonId, SagaPolicy

T = TypeVar("T")


@dataclass(frozen=True)
class Stop:
    """A cancel or the deadline, and when it happened (the earliest cause decides)."""

    reason: ReasonId
    at: float


class StepFailed(Exception):
    """A forward step said no (or its retries ended): the saga turns to compensation."""

    def __init__(self, step: str, detail: FailureDetail) -> None:
        super().__init__(f"{step} failed: {detail.reason}")
        self.step = step
        self.reason = detail.reason
        self.at = detail.at
        self.attempt = detail.attempt


@dataclass(frozen=True)
class Ending:
    """How the forward phase ended: completed, stopped, or failed at a step."""

    stop: Stop | None = None
    failure: StepFailed | None = None


@dataclass
class Ticket:
    """An operator's request waiting its turn, until it is performed or refused."""

    action: OperatorAction
    performed: OperatorAction | None = None
    refused: bool = False
    """The saga stopped waiting before this request's turn came."""

    @property
    def answered(self) -> bool:
        return self.performed is not None or self.refused


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


def error_type(error: ActivityError) -> str | None:
    cause = error.cause
    return cause.type if isinstance(cause, ApplicationError) else None
