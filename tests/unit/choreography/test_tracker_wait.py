"""The tracker's wait: woken by this process's folds, whenever the fold lands.

The wait re-reads the saga's view after every wake; the poll (``poll_s``) is only for a tracker
in another process. A fold that commits while the wait's own read is in flight (reads run on
the store's reader thread) must still wake it: otherwise the wait sleeps a whole poll after
the saga has ended (measured: docs/benchmarks.md, *Latency at concurrency 1*).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from choreography.events import placed
from choreography.projection import MIGRATIONS, SagaView, fold_all, new_view
from choreography.tracker import table
from choreography.tracker.queries import POLL_TASK, Queries
from choreography.versions import Reader
from choreography.views import Views
from harness.compare.scenarios import order
from shared.contracts import SagaStatus
from shared.definitions import ORDERS_V1
from shared.runtime import SagaStuck
from shared.saga import SAGA
from shared.store import Row, SqliteStore, Tx
from tests.unit.choreography.test_choreography_tracker import POLICY, ROUTES, START, happy

A_POLL_NEVER_REACHED_S = 3600.0
GUARD_S = 10.0
"""Fails the test instead of hanging it: the wait must return long before (at once)."""


class FoldDuringRead:
    """The ``sagas`` table of one saga, read the way the SQLite store reads (off the loop):
    the first read's snapshot is taken, then the projector's fold commits and wakes the
    waiters, then the read returns its (older) snapshot."""

    def __init__(self, views: Views, running: SagaView, done: SagaView) -> None:
        self.views = views
        self.row = self._row(running, 1.0)
        self.done = done
        self.reads = 0
        self.fold: Callable[[], None] = lambda: None

    def _row(self, view: SagaView, stamp: float) -> Row:
        return {"view": self.views.dump(view), "placed": None, "updated_at": stamp}

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        self.reads += 1
        snapshot = self.row
        await asyncio.sleep(0)  # the read is in its thread: the loop runs other tasks
        if self.reads == 1:
            self.row = self._row(self.done, 2.0)  # the fold commits ...
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


class Counted:
    """The orders store, counting what the waits read: whole views, and the poll's checks of
    which waited sagas changed (the number of sagas each check asks about)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.view_reads = 0
        self.checks: list[int] = []
        self.read = asyncio.Event()

    @property
    def reads(self) -> int:
        return self.view_reads + len(self.checks)

    async def query(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        if sql.startswith("SELECT view"):
            self.view_reads += 1
        else:
            self.checks.append(len(params))
        self.read.set()
        return await self.store.query(sql, params)

    async def until_read(self, reads: int) -> None:
        while self.reads < reads:
            self.read.clear()
            await self.read.wait()


async def test_waits_on_sagas_another_process_folds_share_one_check_per_poll(
    tmp_path: Path,
) -> None:
    """Where another process folds the sagas, each poll asks once which of the waited sagas
    changed, and only a changed saga's view is read again: many waits do not each re-read their
    view every poll (at 80 sagas/s this fed the collapse docs/benchmarks.md profiles)."""
    views = Views(Reader(ORDERS_V1))
    store = SqliteStore("orders", tmp_path / "orders.db", MIGRATIONS)
    await store.open()
    firsts = [placed(f"s-{n}", order(f"o-{n}"), POLICY, START, ORDERS_V1.ref) for n in range(20)]

    def insert(tx: Tx) -> None:
        for first in firsts:
            table.insert_start(tx, first, new_view(first, SAGA), None, views)

    await store.run(insert)
    counted = Counted(store)
    queries = Queries(counted, views, poll_s=0.001)  # type: ignore[arg-type]
    waits = {e.saga_id: asyncio.create_task(queries.wait(e.saga_id, 3600)) for e in firsts}
    try:
        async with asyncio.timeout(GUARD_S):
            await counted.until_read(100)  # nothing changes meanwhile

        assert counted.view_reads == len(firsts)  # each wait read its saga once
        assert set(counted.checks) == {len(firsts)}  # each check asked about every waited saga

        events = happy()  # saga s-1, to its end
        done = fold_all(new_view(events[0], SAGA), events, ROUTES)
        await store.run(lambda tx: table.save(tx, [done], views))  # another process's fold
        async with asyncio.timeout(GUARD_S):
            settled = await waits.pop("s-1")

        assert settled.status is SagaStatus.COMPLETED
        assert not any(wait.done() for wait in waits.values())
    finally:
        for wait in waits.values():
            wait.cancel()
        await asyncio.gather(*waits.values(), return_exceptions=True)
        await store.close()
    await asyncio.sleep(0)  # the poll, cancelled with the last wait, finishes
    assert [task for task in asyncio.all_tasks() if task.get_name() == POLL_TASK] == []


async def test_a_wait_nothing_wakes_ends_at_its_timeout_naming_the_saga(tmp_path: Path) -> None:
    """No fold and no poll before the timeout: the wait ends then, as stuck, and leaves no
    poll running."""
    views = Views(Reader(ORDERS_V1))
    store = SqliteStore("orders", tmp_path / "orders.db", MIGRATIONS)
    await store.open()
    first = placed("s-still", order("o-still"), POLICY, START, ORDERS_V1.ref)
    await store.run(lambda tx: table.insert_start(tx, first, new_view(first, SAGA), None, views))
    queries = Queries(store, views, poll_s=A_POLL_NEVER_REACHED_S)
    try:
        async with asyncio.timeout(GUARD_S):
            with pytest.raises(SagaStuck, match=r"^saga s-still not terminal after 0\.1s"):
                await queries.wait("s-still", 0.05)
    finally:
        await store.close()
    await asyncio.sleep(0)
    assert [task for task in asyncio.all_tasks() if task.get_name() == POLL_TASK] == []
