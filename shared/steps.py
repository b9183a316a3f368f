"""The one way both variants run a step or a fence: a canonical span around a middleware chain.

A step (forward or compensation) and a cancel's fence of a step are *invocations*: both
variants call `run_step` / `run_fence` from their activity or participant reaction, so the
same middleware sees the same invocation at the same point in both styles. A middleware is a
plain async callable ``(invocation, proceed) -> result``: it may act before and after
``proceed()`` (the service's own transaction) or not call it at all. Production deployments
run with no middleware; the harness installs its own at this seam and nowhere else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from opentelemetry.trace import Status, StatusCode

from shared.contracts import Phase, StepRequest, StepResult, StepStatus
from shared.errors import BusinessFailure, StepRejected, TransientFailure
from shared.services import Domain, Fence, FenceHook, Within
from shared.telemetry import SAGA_OUTCOME, get_tracer, step_attributes

_tracer = get_tracer("saga-compare.steps")
CANCELLED = "cancelled"
"""The outcome of an attempt cut off in flight, on its span."""

R = TypeVar("R")


class Kind(StrEnum):
    STEP = "step"
    """A forward step or a compensation: the service's handler runs in ``proceed``."""
    FENCE = "fence"
    """A cancel reaching a forward step: the service's fence runs in ``proceed``."""


@dataclass(frozen=True)
class Invocation:
    """What a middleware knows of the call it wraps."""

    kind: Kind
    saga_id: str
    step: str
    phase: Phase
    attempt: int
    round: int
    variant: str
    domain: Domain
    """The domain the call runs in: its saga spec, and each service's step log (read path)."""

    async def step_status(self, step: str | None = None) -> StepStatus | None:
        """What the step's service has recorded of ``step`` (default: this one) for the saga."""
        name = step or self.step
        return await self.domain.service_of(name).step_status(self.saga_id, name)


Proceed = Callable[[], Awaitable[R]]


class Middleware(Protocol):
    """Wraps every step and fence invocation of a process (see the module docstring)."""

    async def __call__(self, invocation: Invocation, proceed: Proceed[R]) -> R: ...


Chain = Sequence[Middleware]


async def _through(chain: Chain, invocation: Invocation, last: Proceed[R]) -> R:
    """Run ``last`` inside every middleware of ``chain``, the first one outermost."""
    if not chain:
        return await last()
    head, rest = chain[0], chain[1:]
    return await head(invocation, lambda: _through(rest, invocation, last))


async def run_step(
    domain: Domain,
    step: str,
    req: StepRequest,
    *,
    variant: str,
    middleware: Chain = (),
    within: Within | None = None,
) -> StepResult:
    """Run a forward step or compensation under its span, through the middleware chain."""
    phase = domain.saga.phase_of(step)
    attributes = step_attributes(req.saga_id, variant, step, phase.value, req.attempt)
    invocation = Invocation(
        Kind.STEP, req.saga_id, step, phase, req.attempt, req.round, variant, domain
    )
    handler = domain.handler(step)
    with _tracer.start_as_current_span(step, attributes=attributes, record_exception=False) as span:
        try:
            result = await _through(middleware, invocation, lambda: handler(req, within))
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


async def run_fence(
    domain: Domain,
    saga_id: str,
    step: str,
    *,
    variant: str,
    middleware: Chain = (),
    within: FenceHook | None = None,
) -> Fence:
    """A cancel reaching a forward step, through its service's fence and the middleware chain."""
    invocation = Invocation(Kind.FENCE, saga_id, step, Phase.FORWARD, 1, 0, variant, domain)
    service = domain.service_of(step)
    return await _through(middleware, invocation, lambda: service.fence(saga_id, step, within))
