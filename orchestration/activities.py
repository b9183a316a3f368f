"""The saga's activities: thin wrappers that run each step through shared.steps.run_step.

Methods on an instance holding the Domain, one activity per step named exactly like the step,
so the FaultPlan applies here exactly as it does in a choreography handler. The idempotency
key is the workflow id (= saga id) plus the step name, which survives a workflow reset.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from orchestration.messages import (
    BUSINESS_FAILURE,
    CLOSE_ORDER,
    PLACE_ORDER,
    STEP_REJECTED,
    TRANSIENT_FAILURE,
    CloseCall,
    FailureDetail,
    PlaceCall,
    StepCall,
    StepDone,
)
from shared.contracts import StepName, StepRequest
from shared.errors import BusinessFailure, InjectedCrash, StepRejected, TransientFailure
from shared.services import Domain
from shared.steps import run_step

VARIANT = "orchestration"
BENIGN = ApplicationErrorCategory.BENIGN


class SagaActivities:
    """Every activity the saga workflow calls, bound to one Domain."""

    def __init__(
        self,
        domain: Domain,
        variant: str = VARIANT,
        *,
        on_crash: Callable[[InjectedCrash], None] = lambda crash: None,
    ) -> None:
        """``on_crash`` runs at an injected crash point (a deployed worker ends its process)."""
        self.domain = domain
        self.variant = variant
        self.on_crash = on_crash

    def all(self) -> Sequence[Callable[..., Any]]:
        """The bound activity methods, for `Worker(activities=...)`."""
        return [
            self.place_order,
            self.close_order,
            self.reserve_inventory,
            self.charge_payment,
            self.deduct_points,
            self.create_shipment,
            self.complete_order,
            self.release_inventory,
            self.refund_payment,
            self.restore_points,
            self.cancel_shipment,
        ]

    @activity.defn(name=PLACE_ORDER)
    async def place_order(self, call: PlaceCall) -> None:
        """Record the order RUNNING; idempotent by saga id, so a retry places nothing twice."""
        await self.domain.orders.place(_saga_id(), call.order)

    @activity.defn(name=CLOSE_ORDER)
    async def close_order(self, call: CloseCall) -> None:
        """Record a COMPENSATED or NEEDS_INTERVENTION end (a no-op once recorded)."""
        await self.domain.orders.close(_saga_id(), call.status, call.reason)

    @activity.defn(name=StepName.RESERVE_INVENTORY.value)
    async def reserve_inventory(self, call: StepCall) -> StepDone:
        return await self._run(StepName.RESERVE_INVENTORY, call)

    @activity.defn(name=StepName.CHARGE_PAYMENT.value)
    async def charge_payment(self, call: StepCall) -> StepDone:
        return await self._run(StepName.CHARGE_PAYMENT, call)

    @activity.defn(name=StepName.DEDUCT_POINTS.value)
    async def deduct_points(self, call: StepCall) -> StepDone:
        return await self._run(StepName.DEDUCT_POINTS, call)

    @activity.defn(name=StepName.CREATE_SHIPMENT.value)
    async def create_shipment(self, call: StepCall) -> StepDone:
        return await self._run(StepName.CREATE_SHIPMENT, call)

    @activity.defn(name=StepName.COMPLETE_ORDER.value)
    async def complete_order(self, call: StepCall) -> StepDone:
        return await self._run(StepName.COMPLETE_ORDER, call)

    @activity.defn(name=StepName.RELEASE_INVENTORY.value)
    async def release_inventory(self, call: StepCall) -> StepDone:
        return await self._run(StepName.RELEASE_INVENTORY, call)

    @activity.defn(name=StepName.REFUND_PAYMENT.value)
    async def refund_payment(self, call: StepCall) -> StepDone:
        return await self._run(StepName.REFUND_PAYMENT, call)

    @activity.defn(name=StepName.RESTORE_POINTS.value)
    async def restore_points(self, call: StepCall) -> StepDone:
        return await self._run(StepName.RESTORE_POINTS, call)

    @activity.defn(name=StepName.CANCEL_SHIPMENT.value)
    async def cancel_shipment(self, call: StepCall) -> StepDone:
        return await self._run(StepName.CANCEL_SHIPMENT, call)

    async def _run(self, step: StepName, call: StepCall) -> StepDone:
        """Run the step with this attempt's faults; map failures onto Temporal's retry rules."""
        info = activity.info()
        req = StepRequest(saga_id=_saga_id(), order=call.order, attempt=info.attempt)
        try:
            result = await run_step(
                self.domain, step, req, variant=self.variant, faults=call.faults
            )
        except BusinessFailure as failure:
            kind = STEP_REJECTED if isinstance(failure, StepRejected) else BUSINESS_FAILURE
            _fail(failure.message, kind, FailureDetail(reason=failure.reason, attempt=info.attempt))
        except TransientFailure as failure:
            _fail(failure.message, TRANSIENT_FAILURE, FailureDetail(attempt=info.attempt))
        except InjectedCrash as crash:
            self.on_crash(crash)
            # A dead worker reports nothing: no completion is sent, so the server times the
            # attempt out after start_to_close and retries it, as it would after a real crash.
            activity.logger.warning("injected crash in %s: attempt left to time out", step)
            if info.is_local:
                # A local activity cannot complete later: its attempt just never answers, and
                # the worker times it out and retries it (a real crash re-runs the whole task).
                await asyncio.get_running_loop().create_future()
            activity.raise_complete_async()
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
    business = kind in (BUSINESS_FAILURE, STEP_REJECTED)
    raise ApplicationError(
        message,
        detail,
        type=kind,
        non_retryable=business,
        # A rule saying no is an expected answer, not an error worth a logged traceback.
        category=BENIGN if business else ApplicationErrorCategory.UNSPECIFIED,
    ) from None
