"""The fault injector at the step seam: a saga's plan applied around a step or a fence.

Around a step, in this order: a forward step its service has already refused (a tombstone)
meets no fault, so a retry of a hung attempt finds the refusal instead of hanging again; then
the holds before the step; the faults before the service (crash before commit, hang, delay,
refusal, transient error); the service's own transaction; the report held back (a delay after
the commit, or until the saga's cancel fenced what it must; holds after the step); a crash
after the commit; a lost acknowledgement (the engine delivers the step again). Every step
gives the signals ``reached(saga, step, before|after)``, every fence ``fenced``, which other
sagas' holds may wait for. Every fault and hold is recorded on the step's span.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

from opentelemetry import trace

from shared.contracts import Phase, StepStatus
from shared.errors import BusinessFailure, TransientFailure
from shared.faults.injector import FaultInjector
from shared.faults.plan import FAULT_EVENT, HOLD_EVENT, CrashPoint, FaultAction, FaultPlan, Hold
from shared.faults.plan import reached as signal_of
from shared.steps import Invocation, Kind, Proceed

R = TypeVar("R")
log = logging.getLogger(__name__)


class StepFaults:
    """`shared.steps.Middleware` applying each saga's plan; see the module docstring."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector

    async def __call__(self, invocation: Invocation, proceed: Proceed[R]) -> R:
        call = invocation
        signals = self.injector.signals
        if call.kind is Kind.FENCE:
            fenced = await proceed()
            signals.give(signal_of(call.saga_id, call.step, "fenced"))
            return fenced
        plan = self.injector.plan_for(call.saga_id, call.domain.saga)
        if plan is None:
            signals.give(signal_of(call.saga_id, call.step, "before"))
            result = await proceed()
            signals.give(signal_of(call.saga_id, call.step, "after"))
            return result
        return await self._faulty(call, plan, proceed)

    async def _faulty(self, call: Invocation, plan: FaultPlan, proceed: Proceed[R]) -> R:
        action = plan.decide(call.saga_id, call.step, call.attempt, call.round)
        before, after = plan.holds_at(call.step, "before"), plan.holds_at(call.step, "after")
        refused = call.phase is Phase.FORWARD and (action.kinds or before or after)
        if refused and await call.step_status() is StepStatus.NOOP:
            return await proceed()  # tombstoned: the service refuses it, no fault applies
        if action.kinds:
            trace.get_current_span().add_event(
                FAULT_EVENT, {"fault.kinds": action.kinds, "saga.attempt": call.attempt}
            )
        for hold in before:
            await self._hold(call, hold)
        await self._before(call, action)
        self.injector.signals.give(signal_of(call.saga_id, call.step, "before"))
        holding = bool(action.delay_after_s or after)
        source = str(call.domain.saga.service_of(call.step))
        if holding:
            self.injector.hold_reports(call.saga_id, source)
        try:
            result = await proceed()
            self.injector.signals.give(signal_of(call.saga_id, call.step, "after"))
            await self._report_later(call, action)
            for hold in after:
                await self._hold(call, hold)
        finally:
            if holding:
                self.injector.release_reports(call.saga_id, source)
        if action.crash is CrashPoint.AFTER_COMMIT:
            await self._die(call, CrashPoint.AFTER_COMMIT)
        if action.lose_ack:
            # The work committed but its acknowledgement is lost: the engine delivers it again.
            raise TransientFailure(call.step, f"injected: {call.step} acknowledgement lost")
        return result

    async def _before(self, call: Invocation, action: FaultAction) -> None:
        """The faults that strike before the service runs."""
        if action.crash is CrashPoint.BEFORE_COMMIT:
            await self._die(call, CrashPoint.BEFORE_COMMIT)
        if action.hang:
            await asyncio.get_running_loop().create_future()  # only a timeout ends it
        if action.delay_s:
            await asyncio.sleep(action.delay_s)
        if action.permanent:
            forward = call.phase is Phase.FORWARD
            reason = call.domain.saga.step(call.step).failure_reason if forward else None
            raise BusinessFailure(call.step, reason, f"injected: {call.step} refused")
        if action.transient:
            raise TransientFailure(
                call.step, f"injected: {call.step} unavailable (attempt {call.attempt})"
            )

    async def _die(self, call: Invocation, point: CrashPoint) -> None:
        """The process dies here (see `FaultInjector.die`), said once in its log first."""
        log.warning("injected crash in %s %s (saga %s)", call.step, point.value, call.saga_id)
        await self.injector.die()

    async def _report_later(self, call: Invocation, action: FaultAction) -> None:
        """Committed; the result is not reported yet (a result in transit)."""
        if action.delay_after_s and action.until_cancelled:
            fence = self.injector.report_waits_for(call.domain.saga, call.step)
            signal = signal_of(call.saga_id, fence, "fenced")
            await self.injector.signals.wait(signal, action.delay_after_s)
        elif action.delay_after_s:
            await asyncio.sleep(action.delay_after_s)

    async def _hold(self, call: Invocation, hold: Hold) -> None:
        """Wait for the hold's signal; past its timeout the attempt fails, to be retried."""
        span = trace.get_current_span()
        span.add_event(HOLD_EVENT, {"hold.until": hold.until, "hold.at": hold.at})
        if not await self.injector.signals.wait(hold.until, hold.timeout_s):
            raise TransientFailure(call.step, f"held at {call.step} until {hold.until}")
        if hold.delay_ms:
            await asyncio.sleep(hold.delay_ms / 1000)
