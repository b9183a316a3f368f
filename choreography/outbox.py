"""Transactional outbox: events commit with the state change, a relay publishes them after.

`add` writes the event into the service's own store inside the caller's transaction, with the
W3C ``traceparent`` of the context it is written in (the step's span); the relay publishes what
was stored, in batches, with ``Nats-Msg-Id`` = the event id, each message under its PRODUCER
``send`` span (whose context it then carries: the bus's tracing), and marks the rows sent. A
process that dies between commit and publish loses nothing: the next relay run finds the row
unsent. Publishing twice would be harmless to the state (the broker drops the duplicate) but
not to the trace (two ``send`` spans of one message), so a relay publishes only rows it has
claimed: a row handed over after its commit is claimed (`take`) just before it is published,
one found by a poll when it is found (`claim`).

The relay's poll never trusts an id watermark (a row may commit after rows with larger ids):
it `claim`s unsent rows no other relay holds, for a short lease, skipping rows another
transaction has locked, so several relays over one store share the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence

from choreography.bus import SAGA_ID_HEADER, Outgoing
from choreography.events import Event
from shared import propagation
from shared.hooks import PublishMiddleware
from shared.store import Migration, Row, Store, Tx, migrations

log = logging.getLogger(__name__)

MIGRATIONS: tuple[Migration, ...] = migrations(
    "outbox",
    """
    CREATE TABLE outbox (
        seq {id},
        event_id TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        headers TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        claimed_by TEXT,
        claimed_until DOUBLE PRECISION,
        sent_at DOUBLE PRECISION
    );
    CREATE INDEX outbox_unsent ON outbox (seq) WHERE sent_at IS NULL
    """,
)
KEEP_SENT_S = 600.0
"""Sent rows are kept a while for inspection (well past the broker's dedup window)."""

LEASE_S = 5.0
"""How long a claimed row is left to its relay before another relay may take it over."""

RECENT = 10_000
"""How many sent event ids the relay remembers, so a poll does not resend a handed-over row."""

CHUNK = 500
"""Ids per ``IN (...)`` list (well under every backend's parameter limit)."""

Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]


def add(tx: Tx, event: Event) -> Outgoing | None:
    """Write the event in the caller's transaction; None if that event id is already there.

    The returned row may be handed to the relay once the transaction has committed.
    """
    body = event.model_dump_json()
    headers = {SAGA_ID_HEADER: event.saga_id}
    propagation.inject(headers)  # the creation context: the relay's send span is its child
    return put(tx, Outgoing(event.subject, body.encode(), headers, event.event_id), body)


def put(tx: Tx, row: Outgoing, body: str | None = None) -> Outgoing | None:
    """Write a ready message in the caller's transaction; None if its id is already there.

    ``add`` writes a saga event through it; the benchmark's durable floor writes bare rows.
    """
    inserted = tx.execute(
        "INSERT INTO outbox (event_id, subject, headers, body, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            row.msg_id,
            row.subject,
            json.dumps(dict(row.headers)),
            row.body.decode() if body is None else body,
            time.time(),
        ),
    )
    return row if inserted else None


def add_message(
    tx: Tx, subject: str, body: str, msg_id: str, headers: dict[str, str]
) -> Outgoing | None:
    """Write any message to publish (a front-door notice); None if ``msg_id`` is already there."""
    return put(tx, Outgoing(subject, body.encode(), headers, msg_id), body)


def _outgoing(row: Row) -> Outgoing:
    return Outgoing(
        subject=row["subject"],
        body=row["body"].encode(),
        headers=json.loads(row["headers"]),
        msg_id=row["event_id"],
    )


def _chunks(values: Sequence[object]) -> Iterable[Sequence[object]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))


def claim(tx: Tx, owner: str, limit: int, now: float, lease_s: float = LEASE_S) -> list[Outgoing]:
    """Take up to ``limit`` unsent rows, oldest first, that no other relay holds a lease on.

    A relay may always take back its own claims (``owner``: a retry after a failed publish).
    Rows another transaction is claiming right now are skipped, not waited for.
    """
    rows = tx.fetchall(
        "SELECT seq, event_id, subject, headers, body FROM outbox WHERE sent_at IS NULL"
        " AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)"
        f" ORDER BY seq LIMIT ? {tx.dialect.skip_locked()}",
        (now, owner, limit),
    )
    seqs = [row["seq"] for row in rows]
    for chunk in _chunks(seqs):
        tx.execute(
            f"UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq IN ({_marks(chunk)})",
            (owner, now + lease_s, *chunk),
        )
    return [_outgoing(row) for row in rows]


def take(
    tx: Tx, owner: str, event_ids: Sequence[str], now: float, lease_s: float = LEASE_S
) -> set[str]:
    """Claim rows handed over after their commit, as ``claim`` does polled ones: those not
    sent and not held by another relay; returns the ids taken. Another relay's poll then
    skips them, so a message is published by one relay only."""
    taken: set[str] = set()
    for chunk in _chunks(event_ids):
        rows = tx.fetchall(
            "UPDATE outbox SET claimed_by = ?, claimed_until = ?"
            f" WHERE event_id IN ({_marks(chunk)}) AND sent_at IS NULL"
            " AND (claimed_until IS NULL OR claimed_until < ? OR claimed_by = ?)"
            " RETURNING event_id",
            (owner, now + lease_s, *chunk, now, owner),
        )
        taken.update(str(row["event_id"]) for row in rows)
    return taken


def mark_sent(tx: Tx, event_ids: Sequence[str], now: float) -> None:
    for chunk in _chunks(event_ids):
        tx.execute(
            f"UPDATE outbox SET sent_at = ? WHERE event_id IN ({_marks(chunk)})", (now, *chunk)
        )


def prune(tx: Tx, now: float, keep_s: float = KEEP_SENT_S) -> int:
    """Delete rows sent more than ``keep_s`` ago; returns how many."""
    return tx.execute("DELETE FROM outbox WHERE sent_at < ?", (now - keep_s,))


async def unsent(store: Store, limit: int = 1000) -> list[Outgoing]:
    """The rows not yet published, oldest first, claimed or not (for inspection)."""
    rows = await store.query(
        "SELECT event_id, subject, headers, body FROM outbox WHERE sent_at IS NULL"
        " ORDER BY seq LIMIT ?",
        (limit,),
    )
    return [_outgoing(row) for row in rows]


def default_owner(name: str = "relay") -> str:
    """A relay of this process, as its claims name it (a process may run several relays
    over one store: the orders host's and the tracker's)."""
    return f"{socket.gethostname()}:{os.getpid()}:{name}"


class Relay:
    """Publishes one store's outbox: rows handed over after their commit, the store polled
    as a fallback (what an earlier run of the process committed but never published).

    The publish seam: each batch goes through ``middleware`` (none in production), which may
    leave some messages unpublished for now; those stay unsent for a later poll."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        *,
        middleware: Sequence[PublishMiddleware] = (),
        batch: int = 256,
        poll_s: float = 0.25,
        retry_s: float = 0.5,
        name: str = "relay",
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.owner = owner or default_owner(name)
        self._publish = publish
        self._middleware = tuple(middleware)
        self._batch = batch
        self._poll_s = poll_s
        self._retry_s = retry_s
        self._name = name
        self._queue: deque[Outgoing] = deque()
        self._queued: set[str] = set()  # in the queue or in the batch being published
        self._unclaimed: set[str] = set()  # queued by a hand-over: not claimed yet
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._signal = asyncio.Event()
        self._poll_now = True
        self._task: asyncio.Task[None] | None = None
        self._pruned_at = time.monotonic()
        self._closed = False
        self.published = 0

    def hand_over(self, rows: Iterable[Outgoing | None]) -> None:
        """Rows whose transaction has committed: publish them without reading them back
        (claimed just before, so that no other relay's poll publishes them too)."""
        self._unclaimed.update(self._enqueue(row for row in rows if row is not None))
        self._signal.set()

    def _enqueue(self, rows: Iterable[Outgoing]) -> list[str]:
        """Queue rows not queued or just sent already (a poll and a hand-over can cross);
        returns the ids queued."""
        queued = []
        for row in rows:
            if row.msg_id not in self._queued and row.msg_id not in self._recent:
                self._queued.add(row.msg_id)
                self._queue.append(row)
                queued.append(row.msg_id)
        return queued

    def wake(self) -> None:
        """Rows were committed by someone who could not hand them over: read the store."""
        self._poll_now = True
        self._signal.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, grace_s: float = 5.0) -> None:
        """Finish the batch in hand, then stop (a cancel could strand a store transaction)."""
        self.kill()
        if self._task is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace_s)
            if not done:
                self._task.cancel()
            self._task = None

    def kill(self) -> None:
        """Stop without another publish: the flag is checked before publishing and marking."""
        self._closed = True
        self._signal.set()

    async def _publish_through(
        self, batch: Sequence[Outgoing], chain: Sequence[PublishMiddleware]
    ) -> Sequence[Outgoing]:
        """Publish through the middleware, the first one outermost; what was published now."""
        if not chain:
            await self._publish(batch)
            return batch

        async def inner(rest: Sequence[Outgoing]) -> None:
            await self._publish_through(rest, chain[1:])

        return await chain[0](self.store.name, batch, inner)

    async def relay_once(self) -> int:
        """Publish what was handed over, or else one batch of unsent rows from the store."""
        if not self._queue:
            self._enqueue(await self.store.run(self._claim))
        batch = [self._queue.popleft() for _ in range(min(len(self._queue), self._batch))]
        taken = [row.msg_id for row in batch]
        try:
            if not batch or self._closed:
                return 0
            batch = await self._take_handed_over(batch)
            if not batch:
                return 0
            published = await self._publish_through(batch, self._middleware)
            ids = [row.msg_id for row in published]
            self._remember(ids)
        finally:
            # Queued until published and remembered: a hand-over of a row this batch polled
            # may land while it is being published, and must not queue it again.
            self._queued.difference_update(taken)
        if self._closed or not ids:
            return 0
        await self.store.run(lambda tx: mark_sent(tx, ids, time.time()))
        self.published += len(ids)
        return len(ids)

    async def _take_handed_over(self, batch: list[Outgoing]) -> list[Outgoing]:
        """The batch less the handed-over rows another relay has claimed or sent meanwhile."""
        handed = {row.msg_id for row in batch if row.msg_id in self._unclaimed}
        if not handed:
            return batch
        self._unclaimed.difference_update(handed)
        ids = sorted(handed)
        mine = await self.store.run(lambda tx: take(tx, self.owner, ids, time.time()))
        return [row for row in batch if row.msg_id in mine or row.msg_id not in handed]

    def _claim(self, tx: Tx) -> list[Outgoing]:
        return claim(tx, self.owner, self._batch, time.time())

    def _remember(self, ids: list[str]) -> None:
        for msg_id in ids:
            self._recent[msg_id] = None
        while len(self._recent) > RECENT:
            self._recent.popitem(last=False)

    async def _run(self) -> None:
        next_poll = 0.0
        while not self._closed:
            self._signal.clear()
            polling = self._poll_now or time.monotonic() >= next_poll
            if polling:
                self._poll_now = False
                next_poll = time.monotonic() + self._poll_s
            try:
                sent = await self.relay_once() if self._queue or polling else 0
                await self._maybe_prune()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if self._closed:
                    return  # stopped mid-publish: the rows stay unsent for the next life
                # Rows stay unsent in the store; the next poll finds them again.
                log.warning("%s: publish failed, will retry: %s", self._name, error)
                self._queue.clear()
                self._queued.clear()
                self._unclaimed.clear()
                await asyncio.sleep(self._retry_s)
                continue
            if sent == 0 and not self._queue:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.0, next_poll - time.monotonic())):
                        await self._signal.wait()

    async def _maybe_prune(self) -> None:
        if time.monotonic() - self._pruned_at > 60:
            self._pruned_at = time.monotonic()
            await self.store.run(lambda tx: prune(tx, time.time()))
