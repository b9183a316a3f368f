"""What the tracker answers: a saga's live state, waiting for it to settle, the intervention
queue. Reads only. A wait is woken at once by this process's folds; for folds in another
process (the tracker runs elsewhere, or beside others on one durable) one poll per process
asks every ``poll_s`` which of the waited sagas' rows changed, and wakes only their waits."""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_TASK = "tracker wait poll"
"""The task that polls for the waits, running while anything waits."""


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
    """Reads of the ``sagas`` table, and the waits: woken by this process's folds, and by
    one poll of the rows' ``updated_at`` for all of them."""

    def __init__(self, store: Store, views: Views, *, poll_s: float = 0.1) -> None:
        self.store = store
        self.views = views
        self.poll_s = poll_s
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._seen: dict[str, float] = {}
        """Each waited saga's ``updated_at`` when its waits last read its view."""
        self._poll: asyncio.Task[None] | None = None

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
        """Re-read the view until ``ready`` finds something, whenever a fold in this process
        or the poll wakes the wait; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        woken = asyncio.Event()
        self._waiters.setdefault(saga_id, set()).add(woken)
        if self._poll is None:
            self._poll = asyncio.create_task(self._polling(), name=POLL_TASK)
        try:
            while True:
                # Cleared before the read, not after: a fold that commits while the read is in
                # its thread wakes the wait, and it reads again instead of sleeping a poll.
                woken.clear()
                found = await table.read_stamped_view(self.store, saga_id, self.views)
                if found is None:
                    raise UnknownSaga(saga_id)
                view, stamp = found
                if self._seen.setdefault(saga_id, stamp) != stamp:
                    # Another wait of this saga may have slept through the change this read
                    # found: the poll would now take it for seen.
                    self._seen[saga_id] = stamp
                    for other in self._waiters[saga_id] - {woken}:
                        other.set()
                if (result := ready(view)) is not None:
                    return result
                try:
                    async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                        await woken.wait()
                except TimeoutError:
                    raise TimeoutError(f"saga {saga_id}: nothing after {timeout_s}s") from None
        finally:
            waiters = self._waiters.get(saga_id, set())
            waiters.discard(woken)
            if not waiters:
                self._waiters.pop(saga_id, None)
                self._seen.pop(saga_id, None)
            if not self._waiters and self._poll is not None:
                self._poll.cancel()
                self._poll = None

    async def _polling(self) -> None:
        """Every ``poll_s`` while anything waits: one read of the waited sagas' stamps (in
        chunks), waking the waits of each saga whose row changed since they read it."""
        while True:
            await asyncio.sleep(self.poll_s)
            waited = list(self._waiters)
            try:
                current = await table.stamps(self.store, waited)
            except Exception as error:  # the store is down: the next poll asks again
                log.debug("tracker wait poll: %s", error)
                continue
            for saga_id in waited:
                seen = self._seen.get(saga_id)
                if seen is not None and current.get(saga_id, seen) != seen:
                    self.wake(saga_id)
