"""A runtime as the harness drives it: sagas started with the faults of their case.

The faults never travel with the saga: before it starts, the saga's plan is installed where the
runtime's processes look for it (`shared/faults/sources.py`) — in this process's memory for a
runtime the harness built, in the state dir of a deployment started with ``up --chaos``. A
deployment started without ``--chaos`` has no injector: a plan for it is refused up front.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from shared import faults
from shared.contracts import OperatorAction, OrderRequest, SagaOutcome, SagaPolicy
from shared.faults import FaultInjector, FaultPlan, MemoryPlans
from shared.faults.sources import PlanBoard
from shared.hooks import Hooks
from shared.runtime import SagaRuntime
from shared.services import Domain
from shared.validation import InvalidInput

R = TypeVar("R", bound=SagaRuntime, covariant=True)

NO_INJECTOR = (
    "the deployment runs no fault injector, and {what} injects faults; start the deployment"
    " with `saga-compare up --chaos` (faults reach only a deployment started for chaos)"
)


class NoInjector:
    """The plan board of processes without an injector (a deployment not started for chaos,
    the benchmark's runtimes): a saga with faults is refused."""

    def install(self, saga_id: str, plan: FaultPlan) -> None:
        if not plan.empty:
            raise InvalidInput(NO_INJECTOR.format(what=f"saga {saga_id}"))

    def plan(self, saga_id: str) -> FaultPlan | None:
        return None


def injected(variant: str) -> tuple[MemoryPlans, Hooks]:
    """A plan board in this process and the hooks of an injector reading it, for a runtime of
    ``variant`` the harness builds (its composition root takes the hooks)."""
    board = MemoryPlans()
    return board, faults.hooks(FaultInjector.for_variant(variant, board))


@dataclass
class Faulty(Generic[R]):
    """A runtime and the plan board its processes read: the harness's view of a variant.

    The same operations as the runtime, but a saga starts with its faults (installed first).
    """

    runtime: R
    plans: PlanBoard

    @property
    def variant(self) -> str:
        return self.runtime.variant

    @property
    def domain(self) -> Domain:
        return self.runtime.domain

    async def start_saga(
        self, saga_id: str, order: OrderRequest, faults: FaultPlan, policy: SagaPolicy
    ) -> None:
        """Install the saga's plan (resolved against the runtime's definition), then start it."""
        self.plans.install(saga_id, faults.resolve(self.runtime.domain.saga))
        await self.runtime.start_saga(saga_id, order, policy)

    async def cancel_saga(self, saga_id: str) -> None:
        await self.runtime.cancel_saga(saga_id)

    async def describe(self, saga_id: str) -> SagaOutcome:
        return await self.runtime.describe(saga_id)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        return await self.runtime.wait(saga_id, timeout_s)

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        return await self.runtime.retry_compensation(saga_id, who)

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        return await self.runtime.retry_step(saga_id, who)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        return await self.runtime.resolve(saga_id, who, note)
