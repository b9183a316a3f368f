"""Payloads between the runtime, the workflow and its activities (pydantic data converter).

One input model per workflow and activity, so fields can be added without breaking histories.
The saga id is the workflow id, which is also the activities' idempotency key.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts import OrderRequest, Reason, SagaPolicy, SagaStatus, StepResult
from shared.faults import FaultPlan

WORKFLOW_NAME = "OrderSaga"
PLACE_ORDER = "place_order"
CLOSE_ORDER = "close_order"

BUSINESS_FAILURE = "BusinessFailure"
STEP_REJECTED = "StepRejected"
TRANSIENT_FAILURE = "TransientFailure"
NON_RETRYABLE = (BUSINESS_FAILURE, STEP_REJECTED)

ActivityMode = Literal["remote", "local"]
REMOTE: ActivityMode = "remote"
LOCAL: ActivityMode = "local"
"""How the workflow runs its activities: through the task queue (any worker may take them),
or as local activities inside the worker running the workflow (docs/orchestration.md)."""
"""ApplicationError types that no retry policy may retry: a rule said no."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SagaInput(_Message):
    """The workflow's one input: the order, the faults it meets and the timing rules."""

    saga_id: str
    order: OrderRequest
    faults: FaultPlan = FaultPlan()
    policy: SagaPolicy = SagaPolicy()
    activities: ActivityMode = REMOTE
    """Part of the input, so a run keeps the mode it started with (replay sees the same)."""


class StepCall(_Message):
    """A forward step or compensation activity's input; the attempt comes from the engine."""

    order: OrderRequest
    faults: FaultPlan = FaultPlan()


class StepDone(_Message):
    """What a step activity returns: the service's result and the attempt that produced it."""

    result: StepResult
    attempt: int


class PlaceCall(_Message):
    """Record the order as RUNNING, the saga's first durable business write."""

    order: OrderRequest


class CloseCall(_Message):
    """Record a saga's end that is not COMPLETED (COMPENSATED or NEEDS_INTERVENTION)."""

    status: SagaStatus
    reason: Reason | None = None


class FailureDetail(_Message):
    """Carried in an activity's ApplicationError details: why it failed and on which attempt."""

    reason: Reason | None = None
    attempt: int = 1
