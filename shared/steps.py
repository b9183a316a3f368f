"""The one way both variants run a step: a canonical span, the order's faults, the service call.

Faults are applied here, around the service, never inside it: the same plan therefore hits
a Temporal activity and a JetStream handler at the same point of the same step. A forward
step a cancel has fenced (or a compensation has tombstoned) is refused before its faults: a
retry of a hung attempt finds the tombstone instead of hanging again.
"""

from __future__ import annotations

import asyncio

from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from shared.contracts import Phase, StepRequest, StepResult
from shared.errors import BusinessFailure, InjectedCrash, StepRejected, TransientFailure
from shared.faults import FaultAction, FaultPlan
from shared.services import Domain, Within
from shared.telemetry import FAULT_EVENT, SAGA_OUTCOME, step_attributes

_tracer = trace.get_tracer("saga-compare.steps")
CANCELLED = "cancelled"
"""The outcome of an attempt cut off in flight, on its span."""


async def run_step(
    domain: Domain,
    step: str,
    req: StepRequest,
    *,
    variant: str,
    faults: FaultPlan | None = None,
    within: Within | None = None,
) -> StepResult:
    """Run a forward step or compensation under its span, with the plan's faults applied."""
    phase = domain.saga.phase_of(step)
    attributes = step_attributes(req.saga_id, variant, step, phase.value, req.attempt)
    with _tracer.start_as_current_span(step, attributes=attributes, record_exception=False) as span:
        action = (faults or FaultPlan()).decide(req.saga_id, step, req.attempt, req.round)
        try:
            if phase is Phase.FORWARD and await domain.service_of(step).tombstoned(
                req.saga_id, step
            ):
                raise StepRejected(step, None, f"{step} was fenced before it ran")
            result = await _faulty_call(domain, step, req, action, within, variant)
        except BusinessFailure as failure:
            rejected = isinstance(failure, StepRejected)
            span.set_attribute(SAGA_OUTCOME, "rejected" if rejected else "failed")
            span.set_status(Status(StatusCode.ERROR, failure.message))
            raise
        except TransientFailure as failure:
            span.set_attribute(SAGA_OUTCOME, "error")
            span.set_status(Status(StatusCode.ERROR, failure.message))
            raise
        except asyncio.CancelledError:
            # Cut off in flight (an attempt timeout, an abandoned activity, a stopping
            # process): not a success, whatever it did before (OTel leaves it unset).
            span.set_attribute(SAGA_OUTCOME, CANCELLED)
            span.set_status(Status(StatusCode.ERROR, f"{step}: attempt cut off in flight"))
            raise
        span.set_attribute(SAGA_OUTCOME, result.status.value)
        return result


async def _faulty_call(
    domain: Domain,
    step: str,
    req: StepRequest,
    action: FaultAction,
    within: Within | None,
    variant: str,
) -> StepResult:
    if action.kinds:
        trace.get_current_span().add_event(
            FAULT_EVENT, {"fault.kinds": action.kinds, "saga.attempt": req.attempt}
        )
    if action.crash == "before_commit":
        raise InjectedCrash(step, action.crash)
    if action.hang:
        await asyncio.get_running_loop().create_future()  # never answers; only a timeout ends it
    if action.delay_s:
        await asyncio.sleep(action.delay_s)
    if action.permanent:
        forward = domain.saga.phase_of(step) is Phase.FORWARD
        reason = domain.saga.step(step).failure_reason if forward else None
        raise BusinessFailure(step, reason, f"injected: {step} refused")
    if action.transient:
        raise TransientFailure(step, f"injected: {step} unavailable (attempt {req.attempt})")
    result = await domain.handler(step)(req, within)
    if action.delay_after_s and action.until_cancelled:
        # Committed; the report waits for the cancel to reach what it must reach first.
        fenced = step if variant == "orchestration" else domain.saga.pivot
        await domain.until_fenced(req.saga_id, fenced, action.delay_after_s)
    elif action.delay_after_s:
        await asyncio.sleep(action.delay_after_s)  # committed; the result is not reported yet
    if action.crash == "after_commit":
        raise InjectedCrash(step, action.crash)
    if action.lose_ack:
        # The work committed but its acknowledgement is lost: the engine delivers it again.
        raise TransientFailure(step, f"injected: {step} acknowledgement lost after commit")
    return result
