"""What the tracker answers: a saga's live state, waiting for it to settle, the intervention
queue. Reads only; where the tracker runs in another process (a front door, the monitor),
a wait polls the projection, and here the projector's folds wake it at once."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from choreography.projection import SagaView, outcome
from choreography.tracker import table
from choreography.views import Views
from shared.contracts import (
    ActionResult,
    OperatorAction,
    ReasonId,
    SagaOutcome,
    SagaStatus,
    StepId,
)
from shared.runtime import SagaStuck, UnknownSaga
from shared.store import Store

T = TypeVar("T")


class Intervention(BaseModel):
    """A saga a person must finish: which compensations failed, and whether it is resolved."""

    model_config = ConfigDict(frozen=True)

    saga_id: str
    order_id: str
    reason: ReasonId | None
    failed_step: StepId | None
    failed_compensations: list[StepId]
    at: float
    resolved: bool = False


class Queries:
    """Reads of the ``sagas`` table, and the waits woken by this process's folds."""

    def __init__(self, store: Store, views: Views, *, poll_s: float = 0.1) -> None:
        self.store = store
        self.views = views
        self.poll_s = poll_s
        self._waiters: dict[str, set[asyncio.Event]] = {}

    async def view(self, saga_id: str) -> SagaView:
        found = await table.read_view(self.store, saga_id, self.views)
        if found is None:
            raise UnknownSaga(saga_id)
        return found

    def outcome(self, view: SagaView) -> SagaOutcome:
        """The saga's live state, by the steps of the definition it runs (as far as known)."""
        return outcome(view, self.views.spec_of(view))

    async def describe(self, saga_id: str) -> SagaOutcome:
        """The saga's live state in the shape both variants share (one read)."""
        return self.outcome(await self.view(saga_id))

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The settled outcome (waiting for an operator counts as settled)."""

        def settled(view: SagaView) -> SagaOutcome | None:
            current = self.outcome(view)
            return current if current.status.terminal else None

        try:
            return await self._until(saga_id, settled, timeout_s)
        except TimeoutError:
            current = await self.describe(saga_id)
            raise SagaStuck(saga_id, table.in_flight(current), timeout_s) from None

    async def wait_action(self, saga_id: str, index: int, timeout_s: float) -> OperatorAction:
        """The ``index``-th recorded action once its result is known (a retry's round ended)."""

        def known(view: SagaView) -> OperatorAction | None:
            action = self.outcome(view).actions[index]
            return None if action.result is ActionResult.PENDING else action

        return await self._until(saga_id, known, timeout_s)

    async def interventions(self, *, include_resolved: bool = False) -> list[Intervention]:
        """The intervention queue: sagas waiting for an operator, oldest first."""
        rows = await self.store.query(
            "SELECT view, placed FROM sagas WHERE status = ?",
            (SagaStatus.NEEDS_INTERVENTION.value,),
        )
        queue = []
        for row in rows:
            view = self.views.load(row["view"], row["placed"])
            current = self.outcome(view)
            if current.resolved and not include_resolved:
                continue
            queue.append(
                Intervention(
                    saga_id=view.saga_id,
                    order_id=view.order_id,
                    reason=current.reason,
                    failed_step=current.failed_step,
                    failed_compensations=current.failed_compensations,
                    at=view.end.at if view.end else 0.0,
                    resolved=current.resolved,
                )
            )
        return sorted(queue, key=lambda item: item.at)

    def wake(self, saga_id: str) -> None:
        """The saga's view changed in this process: its waiters read it again now."""
        for event in self._waiters.get(saga_id, ()):
            event.set()

    async def _until(
        self, saga_id: str, ready: Callable[[SagaView], T | None], timeout_s: float
    ) -> T:
        """Re-read the view until ``ready`` finds something: woken by this process's folds and
        decisions, polling for another process's; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        woken = asyncio.Event()
        self._waiters.setdefault(saga_id, set()).add(woken)
        try:
            while True:
                # Cleared before the read, not after: a fold that commits while the read is in
                # its thread wakes the wait, and it reads again instead of sleeping a poll.
                woken.clear()
                found = ready(await self.view(saga_id))
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"saga {saga_id}: nothing after {timeout_s}s")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, self.poll_s)):
                        await woken.wait()
        finally:
            waiters = self._waiters.get(saga_id, set())
            waiters.discard(woken)
            if not waiters:
                self._waiters.pop(saga_id, None)
