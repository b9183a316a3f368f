"""The lab's own step middleware, around and inside the fault injector, in both styles alike.

- `Witness`, outermost: sees every attempt of a step as it arrives, before any hold. It gives
  the signals an interleaving waits for that the injector does not give — an attempt entered,
  an attempt after the first (the engine retried: in the orchestration the first attempt is
  then abandoned, still held) — and knows which attempts are still under way.
- `Recorder`, innermost: sees what the service itself did — each step's result or refusal
  with its audit, each fence's answer — writes it into the history and says the attempt was
  tried (any answer, a lock's wait included).

Signals are names on the injector's board (`shared.faults.released`), so the injector's holds
wait on them like on any other.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from typing import Any, TypeVar

from harness.anomalies.history import History
from shared.contracts import Phase, StepResult, StepStatus
from shared.errors import BusinessFailure, StepRejected, TransientFailure
from shared.faults import Signals, released
from shared.faults.plan import Signal
from shared.services import Fence
from shared.steps import Invocation, Kind, Proceed

R = TypeVar("R")
REPLAYED = "replayed"
"""A step answered from its step log (it ran before): no reads or writes of its own."""


def entered(saga_id: str, step: str) -> Signal:
    """An attempt of the step arrived (before any hold)."""
    return released(f"{saga_id}/{step}/entered")


def retried(saga_id: str, step: str) -> Signal:
    """An attempt after the first arrived: the engine gave up waiting for an earlier one."""
    return released(f"{saga_id}/{step}/retried")


def tried(saga_id: str, step: str) -> Signal:
    """An attempt reached the service and came back, whatever it answered."""
    return released(f"{saga_id}/{step}/tried")


def late(saga_id: str, step: str) -> Signal:
    """What a step held back to commit late waits for: its saga settled, or a retry of it."""
    return released(f"late/{saga_id}/{step}")


class Witness:
    """Outermost middleware: arrivals and attempts under way (see the module docstring)."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals
        self._under_way: Counter[tuple[str, str]] = Counter()
        self._ended = asyncio.Event()

    async def __call__(self, invocation: Invocation, proceed: Proceed[R]) -> R:
        call = invocation
        if call.kind is Kind.FENCE:
            return await proceed()
        key = (call.saga_id, call.step)
        self.signals.give(entered(*key))
        if call.attempt > 1:
            self.signals.give(retried(*key))
            self.signals.give(late(*key))
        self._under_way[key] += 1
        try:
            return await proceed()
        finally:
            self._under_way[key] -= 1
            if self._under_way[key] <= 0:
                del self._under_way[key]
            self._ended.set()

    def busy(self, sagas: Iterable[str]) -> bool:
        wanted = set(sagas)
        return any(saga in wanted for saga, _ in self._under_way)

    async def until_quiet(self, sagas: Iterable[str], timeout_s: float) -> None:
        """Until no attempt of these sagas is under way (a held one released and answered)."""
        wanted = set(sagas)
        async with asyncio.timeout(timeout_s):
            while True:
                self._ended.clear()  # before the check: an end after it wakes the wait
                if not self.busy(wanted):
                    return
                await self._ended.wait()


class Recorder:
    """Innermost middleware: the history of what the services did (module docstring)."""

    def __init__(self, history: History, signals: Signals) -> None:
        self.history = history
        self.signals = signals
        self.committed: set[tuple[str, str]] = set()
        """(saga, forward step) pairs whose service committed the step here."""

    async def __call__(self, invocation: Invocation, proceed: Proceed[R]) -> R:
        call = invocation
        if call.kind is Kind.FENCE:
            answer = await proceed()
            self._fence(call, answer)
            return answer
        try:
            result = await proceed()
        except BusinessFailure as failure:
            outcome = "rejected" if isinstance(failure, StepRejected) else "failed"
            self._step(call, outcome, str(failure.reason) if failure.reason else None)
            self.history.accesses(call.saga_id, self._where(call), failure.detail)
            raise
        except TransientFailure as failure:
            self._step(call, "transient", failure.message)
            raise
        if isinstance(result, StepResult):
            self._result(call, result)
        return result

    def _result(self, call: Invocation, result: StepResult) -> None:
        if result.replayed:
            self._step(call, REPLAYED, None)
            return  # its reads and writes were recorded when it first ran
        self._step(call, result.status.value, None)
        self.history.accesses(call.saga_id, self._where(call), result.detail)
        if call.phase is Phase.FORWARD and result.status is StepStatus.DONE:
            self.committed.add((call.saga_id, call.step))

    def _step(self, call: Invocation, outcome: str, reason: str | None) -> None:
        self.history.add("step", call.saga_id, outcome=outcome, reason=reason, **self._where(call))
        self.signals.give(tried(call.saga_id, call.step))

    def _fence(self, call: Invocation, answer: object) -> None:
        outcome = answer.value if isinstance(answer, Fence) else str(answer)
        self.history.add("fence", call.saga_id, step=call.step, outcome=outcome)

    @staticmethod
    def _where(call: Invocation) -> dict[str, Any]:
        return {"step": call.step, "phase": call.phase.value, "attempt": call.attempt}
