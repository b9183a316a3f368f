"""Payloads between the runtime, the workflow and its activities (pydantic data converter).

One input model per workflow and activity, so fields can be added without breaking histories.
The saga id is the workflow id, which is also the activities' idempotency key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.contracts import OrderRequest, Reason, SagaPolicy, SagaStatus, StepResult
from shared.faults import FaultPlan
from shared.saga import SAGA, SagaSpec

WORKFLOW_NAME = "OrderSaga"
PLACE_ORDER = "place_order"
CLOSE_ORDER = "close_order"

BUSINESS_FAILURE = "BusinessFailure"
STEP_REJECTED = "StepRejected"
TRANSIENT_FAILURE = "TransientFailure"
NON_RETRYABLE = (BUSINESS_FAILURE, STEP_REJECTED)
"""ApplicationError types that no retry policy may retry: a rule said no."""


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SagaInput(_Message):
    """The workflow's one input: the order, the faults it meets, the timing rules and the saga
    spec it sequences (it travels with the workflow, so a run keeps the spec it started with)."""

    saga_id: str
    order: OrderRequest
    faults: FaultPlan = FaultPlan()
    policy: SagaPolicy = SagaPolicy()
    saga: SagaSpec = SAGA


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
