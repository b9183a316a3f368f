"""The tracker's wait: woken by this process's folds, whenever the fold lands.

The wait re-reads the saga's view after every wake; the poll (``poll_s``) is only for a tracker
in another process. A fold that commits while the wait's own read is in flight (reads run on
the store's reader thread) must still wake it: otherwise the wait sleeps a whole poll after
the saga has ended (measured: docs/benchmarks.md, *Latency at concurrency 1*).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from choreography.projection import SagaView, fold_all, new_view
from choreography.tracker.queries import Queries
from choreography.versions import Reader
from choreography.views import Views
from shared.contracts import SagaStatus
from shared.definitions import ORDERS_V1
from shared.saga import SAGA
from shared.store import Row
from tests.unit.choreography.test_choreography_tracker import ROUTES, happy

A_POLL_NEVER_REACHED_S = 3600.0
GUARD_S = 10.0
"""Fails the test instead of hanging it: the wait must return long before (at once)."""


class FoldDuringRead:
    """The ``sagas`` table of one saga, read the way the SQLite store reads (off the loop):
    the first read's snapshot is taken, then the projector's fold commits and wakes the
    waiters, then the read returns its (older) snapshot."""

    def __init__(self, views: Views, running: SagaView, done: SagaView) -> None:
        self.views = views
        self.row = self._row(running)
        self.done = done
        self.reads = 0
        self.fold: Callable[[], None] = lambda: None

    def _row(self, view: SagaView) -> Row:
        return {"view": self.views.dump(view), "placed": None}

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self.reads += 1
        snapshot = self.row
        await asyncio.sleep(0)  # the read is in its thread: the loop runs other tasks
        if self.reads == 1:
            self.row = self._row(self.done)  # the fold commits ...
            self.fold()  # ... and wakes whoever waits for the saga
        return [snapshot]


async def test_a_fold_landing_while_the_wait_reads_the_view_ends_the_wait_at_once() -> None:
    events = happy()
    views = Views(Reader(ORDERS_V1))
    running = fold_all(new_view(events[0], SAGA), events[:-1], ROUTES)
    done = fold_all(new_view(events[0], SAGA), events, ROUTES)
    store = FoldDuringRead(views, running, done)
    queries = Queries(store, views, poll_s=A_POLL_NEVER_REACHED_S)  # type: ignore[arg-type]
    store.fold = lambda: queries.wake(done.saga_id)

    async with asyncio.timeout(GUARD_S):
        settled = await queries.wait(done.saga_id, A_POLL_NEVER_REACHED_S)

    assert settled.status is SagaStatus.COMPLETED
    assert store.reads == 2  # woken by the fold, read once more: not by the poll
