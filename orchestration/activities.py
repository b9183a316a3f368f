"""The saga's activities: one dynamic activity runs any step the spec names, through run_step.

Methods on an instance holding the Domain and the step seam's middleware. Every forward step
and compensation is an activity named exactly like the step (span names stay
``RunActivity:reserve_inventory``), served by one dynamic activity that dispatches by that name
to the step's service, so a step added to the spec needs no code here, and whatever middleware
the process was built with wraps it exactly as it wraps a choreography handler. The
idempotency key is the workflow id (= saga id) plus the step name, which survives a reset.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from temporalio import activity
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from orchestration.messages import (
    BUSINESS_FAILURE,
    CLOSE_ORDER,
    DUPLICATE_ORDER,
    FENCE_STEP,
    ORDER_REJECTED,
    PLACE_ORDER,
    STEP_REJECTED,
    TRANSIENT_FAILURE,
    CloseCall,
    FailureDetail,
    FenceCall,
    PlaceCall,
    StepCall,
    StepDone,
)
from shared.admission import Admission, PolicyLimits
from shared.contracts import StepRequest
from shared.errors import BusinessFailure, DuplicateOrder, StepRejected, TransientFailure
from shared.services import Domain, Fence
from shared.steps import Chain, run_fence, run_step

VARIANT = "orchestration"
BENIGN = ApplicationErrorCategory.BENIGN


class SagaActivities:
    """Every activity the saga workflow calls, bound to one Domain."""

    def __init__(
        self,
        domain: Domain,
        middleware: Chain = (),
        variant: str = VARIANT,
        *,
        limits: PolicyLimits | None = None,
    ) -> None:
        self.domain = domain
        self.middleware = middleware
        self.variant = variant
        self.admission = Admission(domain, limits or PolicyLimits())

    def all(self) -> Sequence[Callable[..., Any]]:
        """The bound activity methods, for `Worker(activities=...)`."""
        return [self.place_order, self.close_order, self.fence_step, self.step]

    @activity.defn(name=PLACE_ORDER)
    async def place_order(self, call: PlaceCall) -> None:
        """Admit the order, then record it; idempotent by saga id (a retry records nothing
        twice and keeps the first verdict).

        An order the records or the worker's limits refuse is recorded REJECTED and fails
        for good (OrderRejected, its reason the detail); another saga holding the order id
        refuses it for good (DuplicateOrder).
        """
        refused = await self.admission.judge(call.order, call.policy)
        try:
            placed = await self.domain.orders.place(
                _saga_id(), call.order, rejected=refused.reason if refused else None
            )
        except DuplicateOrder as duplicate:
            # The detail is the saga that holds the order id, for the refusal's message.
            raise ApplicationError(
                str(duplicate), duplicate.saga_id, type=DUPLICATE_ORDER, non_retryable=True
            ) from None
        if placed.rejected:
            message = str(refused) if refused else f"the order was rejected ({placed.reason})"
            raise ApplicationError(
                message, placed.reason, type=ORDER_REJECTED, non_retryable=True, category=BENIGN
            )

    @activity.defn(name=FENCE_STEP)
    async def fence_step(self, call: FenceCall) -> Fence:
        """A cancel reaching a step in flight: tombstone it unless it committed first."""
        if not self.domain.saga.knows(call.step):
            raise ApplicationError(f"the saga has no step {call.step!r}", non_retryable=True)
        return await run_fence(
            self.domain, _saga_id(), call.step, variant=self.variant, middleware=self.middleware
        )

    @activity.defn(name=CLOSE_ORDER)
    async def close_order(self, call: CloseCall) -> None:
        """Record a COMPENSATED or NEEDS_INTERVENTION end (a no-op once recorded)."""
        await self.domain.orders.close(_saga_id(), call.status, call.reason)

    @activity.defn(dynamic=True)
    async def step(self, args: Sequence[RawValue]) -> StepDone:
        """Any forward step or compensation of the spec, by the activity's name."""
        name = activity.info().activity_type
        if not self.domain.saga.knows(name):
            raise ApplicationError(f"the saga has no step {name!r}", non_retryable=True)
        call = activity.payload_converter().from_payload(args[0].payload, StepCall)
        return await self.run(name, call)

    async def run(self, step: str, call: StepCall) -> StepDone:
        """Run the step (this attempt); map failures onto Temporal's retry rules."""
        info = activity.info()
        req = StepRequest(
            saga_id=_saga_id(), order=call.order, attempt=info.attempt, round=call.round
        )
        try:
            result = await run_step(
                self.domain, step, req, variant=self.variant, middleware=self.middleware
            )
        except BusinessFailure as failure:
            kind = STEP_REJECTED if isinstance(failure, StepRejected) else BUSINESS_FAILURE
            detail = FailureDetail(reason=failure.reason, attempt=info.attempt, at=time.time())
            _fail(failure.message, kind, detail)
        except TransientFailure as failure:
            _fail(failure.message, TRANSIENT_FAILURE, FailureDetail(attempt=info.attempt))
        return StepDone(result=result, attempt=info.attempt)


def _saga_id() -> str:
    """The saga id is the calling workflow's id: the idempotency key that survives a reset."""
    workflow_id = activity.info().workflow_id
    if workflow_id is None:
        raise ApplicationError(
            "saga activities run only inside a saga workflow", non_retryable=True
        )
    return workflow_id


def _fail(message: str, kind: str, detail: FailureDetail) -> NoReturn:
    business = kind in (BUSINESS_FAILURE, STEP_REJECTED, DUPLICATE_ORDER, ORDER_REJECTED)
    raise ApplicationError(
        message,
        detail,
        type=kind,
        non_retryable=business,
        # A rule saying no is an expected answer, not an error worth a logged traceback.
        category=BENIGN if business else ApplicationErrorCategory.UNSPECIFIED,
    ) from None
