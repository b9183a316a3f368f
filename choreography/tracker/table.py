"""The ``sagas`` table in the orders store: one row per saga, its view and the columns derived
from it (what read models list and filter by). Plain functions over a transaction, used by
every part of the tracker. Views are read and written as the tracker's `Views` says (its
release's shape; another release's views as its event versioning setting reads them)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from choreography.bus import Outgoing
from choreography.events import Event
from choreography.projection import FORWARD, Ended, SagaView, outcome, phase_of, status_of
from choreography.views import UnreadableView, Views
from shared.contracts import SagaOutcome, SagaStatus, StepId, StepStatus
from shared.store import Row, Store, Tx

log = logging.getLogger(__name__)

CHUNK = 500
"""Saga ids per ``IN (...)`` list when a batch loads its views."""

HandOver = Callable[[list[Outgoing | None]], None]
"""Where the tracker's writes hand their committed outbox rows (a relay over the orders store)."""


def insert_start(
    tx: Tx, event: Event, view: SagaView, traceparent: str | None, codec: Views
) -> None:
    """The saga's row, in the transaction that places the order (a second place is a no-op)."""
    tx.execute(
        "INSERT INTO sagas (saga_id, order_id, status, phase, started_at, deadline_at,"
        " placed, traceparent, view, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (
            event.saga_id,
            event.order.order_id,
            status_of(view).value,
            FORWARD,
            event.started_at,
            event.deadline_at,
            event.model_dump_json(),
            traceparent,
            codec.dump(view),
            time.time(),
        ),
    )


def load(tx: Tx, saga_ids: list[str], codec: Views) -> dict[str, SagaView]:
    """The views of these sagas, read inside the caller's transaction to be written back (as
    ``codec`` reads: the saga's first event, stored beside its view, is what an upcast needs).

    The rows are locked for the transaction, in saga id order: two trackers folding one
    saga at once (a rolling upgrade runs both releases' on one durable) or a fold beside an
    operator action must not both read the old view, the later write losing the other's.
    """
    rows: list[Row] = []
    lock = tx.dialect.for_update()
    for start in range(0, len(saga_ids), CHUNK):
        chunk = sorted(saga_ids[start : start + CHUNK])
        marks = ",".join("?" * len(chunk))
        rows += tx.fetchall(
            f"SELECT view, placed FROM sagas WHERE saga_id IN ({marks}) ORDER BY saga_id{lock}",
            chunk,
        )
    views = (codec.load(row["view"], row["placed"]) for row in rows)
    return {view.saga_id: view for view in views}


async def read_view(store: Store, saga_id: str, codec: Views) -> SagaView | None:
    """One saga's view through the store's read path (None: not a saga of this store)."""
    rows = await store.query("SELECT view, placed FROM sagas WHERE saga_id = ?", (saga_id,))
    return codec.load(rows[0]["view"], rows[0]["placed"]) if rows else None


async def read_stamped_view(
    store: Store, saga_id: str, codec: Views
) -> tuple[SagaView, float] | None:
    """One saga's view and the ``updated_at`` of the write that made it, in one read."""
    rows = await store.query(
        "SELECT view, placed, updated_at FROM sagas WHERE saga_id = ?", (saga_id,)
    )
    if not rows:
        return None
    return codec.load(rows[0]["view"], rows[0]["placed"]), rows[0]["updated_at"]


async def rows_of(
    store: Store,
    columns: str,
    saga_ids: Sequence[str],
    where: str = "",
    params: Sequence[object] = (),
) -> list[Row]:
    """``columns`` of these sagas' rows (and ``where``, with its ``params``), read ``CHUNK``
    ids per ``IN (...)`` list."""
    rows: list[Row] = []
    for start in range(0, len(saga_ids), CHUNK):
        chunk = saga_ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += await store.query(
            f"SELECT {columns} FROM sagas WHERE saga_id IN ({marks}){where}", (*chunk, *params)
        )
    return rows


async def stamps(store: Store, saga_ids: list[str]) -> dict[str, float]:
    """The ``updated_at`` of these sagas' rows: a few numbers per saga, no view read."""
    rows = await rows_of(store, "saga_id, updated_at", saga_ids)
    return {row["saga_id"]: row["updated_at"] for row in rows}


async def open_sagas(store: Store, codec: Views) -> list[tuple[str, float, SagaView]]:
    """Every saga still running: its id, deadline and view. A view this code cannot read (a
    strict reader meeting a later release's shape) is logged and left alone."""
    rows = await store.query(
        "SELECT saga_id, deadline_at, view, placed FROM sagas WHERE status = ?",
        (SagaStatus.RUNNING.value,),
    )
    found = []
    for row in rows:
        try:
            view = codec.load(row["view"], row["placed"])
        except UnreadableView as unreadable:
            log.error("%s", unreadable)
            continue
        found.append((row["saga_id"], row["deadline_at"], view))
    return found


SAVE = (
    "UPDATE sagas SET view = ?, status = ?, phase = ?, reason = ?, failed_step = ?,"
    " running_step = ?, failed_compensation = ?, waiting = ?, updated_at = ?,"
    " settled_at = CASE WHEN ? = 1 THEN (CASE WHEN status = ? AND settled_at IS NOT NULL"
    " THEN settled_at ELSE ? END) ELSE NULL END,"
    " ended_at = CASE WHEN ? = 1 THEN coalesce(ended_at, ?) ELSE NULL END WHERE saga_id = ?"
)
"""A view and the columns derived from it (what read models list and filter by). On the right
of ``SET``, ``status`` is the row's status before this write: ``settled_at`` keeps the moment
the saga reached its present status."""


def save(tx: Tx, views: list[SagaView], codec: Views) -> None:
    """Write views back with the columns derived from them. ``settled_at`` is when the saga
    reached its present settled status (COMPLETED, COMPENSATED, or NEEDS_INTERVENTION while
    it waits for an operator): what the counters count per minute. ``ended_at`` is when it
    stopped being open: it settled, or stopped waiting for an operator (resolved or
    compensated by a retry) — as a Temporal workflow closes."""
    now = time.time()
    tx.executemany(SAVE, [_columns(view, codec, now) for view in views])


def _columns(view: SagaView, codec: Views, now: float) -> tuple[object, ...]:
    current = outcome(view, codec.spec_of(view))  # by the steps of the saga's own definition
    waiting = current.status is SagaStatus.NEEDS_INTERVENTION and not current.resolved
    ended = current.status.terminal and not waiting  # a saga waiting for a person is open
    failed = current.failed_compensations
    end = view.end
    settled = end.at if end is not None and end.status is current.status and end.at else now
    return (
        codec.dump(view),
        current.status.value,
        phase_of(view),
        str(current.reason) if current.reason else None,
        current.failed_step,
        in_flight(current),
        failed[0] if failed else None,
        int(waiting),
        now,
        int(current.status.terminal),
        current.status.value,
        settled,
        int(ended),
        now,
        view.saga_id,
    )


def record_end(tx: Tx, saga_id: str, end: Ended, codec: Views) -> None:
    """In the transaction that closes the order: the end joins the saga's view (a saga that
    waited for an operator may still become COMPENSATED)."""
    for view in load(tx, [saga_id], codec).values():
        waited = view.end is not None and view.end.status is SagaStatus.NEEDS_INTERVENTION
        if view.end is None or (waited and end.status is SagaStatus.COMPENSATED):
            save(tx, [view.model_copy(update={"end": end})], codec)


def placed(tx: Tx, saga_id: str, codec: Views) -> Event:
    """The saga's first event (``order.placed``), as its row keeps it, in the envelope this
    release writes (what follows from it is written by this release)."""
    row = tx.fetchone("SELECT placed FROM sagas WHERE saga_id = ?", (saga_id,))
    assert row is not None
    return Event.model_validate_json(row["placed"]).in_envelope(codec.shape)


def in_flight(current: SagaOutcome) -> StepId | None:
    """The step or compensation a saga waits on (what a stuck saga is stuck in)."""
    running = [s.step for s in current.steps if s.status is StepStatus.RUNNING]
    return running[-1] if running else None
