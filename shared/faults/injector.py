"""The fault injector: one plan source, one signal board, and the middleware for both seams.

Built by whoever runs sagas with faults — the harness in its own process, or a deployment
process started for chaos (`shared/faults/deployment.py`) — and handed to a variant's
composition root as plain middleware: `step_middleware` wraps every step and fence
(`shared/steps.py`), `publish_middleware` wraps the choreography's outbox relay. A process
built without an injector runs none of this code.

Two things differ by style and are the injector's to know, not the variants':

- what "the saga's cancel has fenced what it must" means for a report held until the cancel
  (``until_cancelled``): the orchestration fences the step in flight, so the report waits for
  the fence of the step itself; in the choreography every service fences its own step, and
  the report must not leave before the pivot is fenced;
- what a process death looks like: in one process the attempt never answers (its engine times
  it out and tries again, as after a real death); in a chaos deployment the process is killed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.faults.plan import FaultPlan
from shared.faults.sources import PlanSource, Signals
from shared.saga import SagaSpec

KEEP = 10_000
"""Resolved plans remembered (a saga's steps come close together)."""

Held = tuple[str, str]
"""A saga's messages from one store: (saga id, the store's service)."""

ReportWaitsFor = Callable[[SagaSpec, str], str]
"""The step whose fence a report held until the cancel waits for (see the module docstring)."""


def the_step_itself(spec: SagaSpec, step: str) -> str:
    """The orchestration's answer: the workflow fences the step in flight."""
    return step


def the_pivot(spec: SagaSpec, step: str) -> str:
    """The choreography's answer: the pivot's service must have fenced its step."""
    return spec.pivot


REPORT_WAITS_FOR: dict[str, ReportWaitsFor] = {
    "orchestration": the_step_itself,
    "choreography": the_pivot,
}


async def never_answer() -> None:
    """A process death within one process: the attempt never answers."""
    await asyncio.get_running_loop().create_future()


@dataclass
class FaultInjector:
    """Plans and signals of one process, and the report holds of its sagas."""

    plans: PlanSource
    signals: Signals = field(default_factory=Signals)
    report_waits_for: ReportWaitsFor = the_step_itself
    die: Callable[[], Awaitable[None]] = never_answer
    """What an injected crash does (see the module docstring)."""
    _resolved: dict[str, FaultPlan | None] = field(default_factory=dict)
    _held: dict[Held, int] = field(default_factory=dict)
    _released: dict[Held, asyncio.Event] = field(default_factory=dict)

    @classmethod
    def for_variant(
        cls,
        variant: str,
        plans: PlanSource,
        signals: Signals | None = None,
        die: Callable[[], Awaitable[None]] = never_answer,
    ) -> FaultInjector:
        return cls(plans, signals or Signals(), REPORT_WAITS_FOR[variant], die)

    def plan_for(self, saga_id: str, spec: SagaSpec) -> FaultPlan | None:
        """The saga's plan with its steps resolved against the spec the saga runs."""
        if saga_id not in self._resolved:
            plan = self.plans.plan(saga_id)
            self._resolved[saga_id] = plan.resolve(spec) if plan is not None else None
            if len(self._resolved) > KEEP:
                del self._resolved[next(iter(self._resolved))]
        return self._resolved[saga_id]

    # -- reports held back (a step's events stay unpublished while it holds its report) -----
    # A hold is a saga's messages from one store (the held step's service): the saga's other
    # services, the tracker's cancel among them, publish as usual meanwhile.

    def hold_reports(self, saga_id: str, source: str) -> None:
        held = (saga_id, source)
        self._held[held] = self._held.get(held, 0) + 1
        self._released.setdefault(held, asyncio.Event()).clear()

    def release_reports(self, saga_id: str, source: str) -> None:
        held = (saga_id, source)
        left = self._held.get(held, 0) - 1
        if left > 0:
            self._held[held] = left
            return
        self._held.pop(held, None)
        released = self._released.pop(held, None)
        if released is not None:
            released.set()

    def reports_held(self, saga_id: str, source: str) -> bool:
        return (saga_id, source) in self._held

    async def until_reports_released(self, saga_id: str, source: str) -> None:
        held = (saga_id, source)
        released = self._released.get(held)
        if released is not None and held in self._held:
            await released.wait()
