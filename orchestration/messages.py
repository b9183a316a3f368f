"""Payloads between the runtime, the workflow and its activities (pydantic data converter).

One input model per workflow and activity, so fields can be added without breaking histories.
The saga id is the workflow id, which is also the activities' idempotency key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import OrderRequest, ReasonId, SagaPolicy, SagaStatus, StepId, StepResult
from shared.definition import DefinitionRef
from shared.saga import SagaSpec

WORKFLOW_NAME = "OrderSaga"
PLACE_ORDER = "place_order"
CLOSE_ORDER = "close_order"
FENCE_STEP = "fence_step"

BUSINESS_FAILURE = "BusinessFailure"
STEP_REJECTED = "StepRejected"
TRANSIENT_FAILURE = "TransientFailure"
DUPLICATE_ORDER = "DuplicateOrder"
ORDER_REJECTED = "OrderRejected"
"""The first activity refused the order (shared/admission.py): the saga ends REJECTED."""
NOT_WAITING = "NotAwaitingOperator"
NON_RETRYABLE = (BUSINESS_FAILURE, STEP_REJECTED, DUPLICATE_ORDER, ORDER_REJECTED)
"""ApplicationError types that no retry policy may retry: a rule said no."""

ActivityMode = Literal["remote", "local"]
REMOTE: ActivityMode = "remote"
LOCAL: ActivityMode = "local"
"""How the workflow runs its activities: through the task queue (any worker may take them),
or as local activities inside the worker running the workflow (docs/orchestration.md)."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SagaInput(_Message):
    """The workflow's one input: the order, the timing rules, and the saga spec it sequences
    with the definition it belongs to (both travel with the workflow, so a run keeps the spec
    it started with, and a worker holding another definition refuses it)."""

    saga_id: str
    order: OrderRequest
    policy: SagaPolicy
    saga: SagaSpec
    definition: DefinitionRef
    activities: ActivityMode = REMOTE
    """Part of the input, so a run keeps the mode it started with (replay sees the same)."""


class StepCall(_Message):
    """A forward step or compensation activity's input; the attempt comes from the engine."""

    order: OrderRequest
    round: int = 0
    """0 for the saga's own run; n for an operator's n-th retry (of a failed compensation, or
    of the failed step past the pivot)."""


class FenceCall(_Message):
    """A cancel reaching a forward step in flight: fence it through its own service."""

    step: StepId


class OperatorCall(_Message):
    """An operator's action: who acts, and a note (required to resolve)."""

    who: str = Field(min_length=1, max_length=100)
    note: str = ""


class StepDone(_Message):
    """What a step activity returns: the service's result and the attempt that produced it."""

    result: StepResult
    attempt: int


class PlaceCall(_Message):
    """Admit the order, then record it (RUNNING, or REJECTED): the saga's first durable
    business write."""

    order: OrderRequest
    policy: SagaPolicy | None = None
    """The policy the workflow runs with, judged against the worker's limits (None in
    histories recorded before the first activity checked it)."""


class CloseCall(_Message):
    """Record a saga's end that is not COMPLETED (COMPENSATED or NEEDS_INTERVENTION)."""

    status: SagaStatus
    reason: ReasonId | None = None


class FailureDetail(_Message):
    """Carried in an activity's ApplicationError details: why it failed and on which attempt."""

    reason: ReasonId | None = None
    attempt: int = 1
    at: float = 0.0
    """When the activity failed (epoch seconds): a cancel that came later does not win."""
