"""Loyalty points: balances that never go negative, and a ledger of every movement.

With the semantic lock on (`Countermeasures.points_lock`), a deduction is *pending* until its
saga ends: it is held (``holds``) until the saga compensates it or the orders service records
the saga's end. A later saga of the same customer whose answer depends on pending points — it
would be refused on them, but not without them — is not refused on data that may still be
given back: it waits (a `LockWait`, retried with the saga's backoff) and is noted in
``lock_waits`` meanwhile, so a monitor can show what it waits for. Off, a deduction is final at
once and another saga may be refused on one that is given back later (a dirty read).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.contracts import Reason, StepName, StepRequest, StepResult
from shared.countermeasures import DEFAULT, Countermeasures
from shared.errors import BusinessFailure, TransientFailure
from shared.services import audit
from shared.services.audit import Audit
from shared.services.base import STEP_LOG, Service, Within, clear, rows_by_key
from shared.store import Migration, Store, Tx, migrations

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "points",
        """
        CREATE TABLE accounts (
            customer_id TEXT PRIMARY KEY,
            balance INTEGER NOT NULL CHECK (balance >= 0)
        );
        CREATE TABLE ledger (
            saga_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            delta INTEGER NOT NULL,
            kind TEXT NOT NULL,
            PRIMARY KEY (saga_id, kind)
        )
        """,
        """
        CREATE TABLE holds (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            points INTEGER NOT NULL
        );
        CREATE INDEX holds_customer ON holds (customer_id);
        CREATE TABLE lock_waits (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            held_by TEXT NOT NULL,
            since DOUBLE PRECISION NOT NULL
        )
        """,
    ),
)
"""Version 2: the semantic lock's pending deductions and the sagas waiting on them."""

OrderEnds = Callable[[Collection[str]], Awaitable[set[str]]]
"""Which of these sagas have ended (the orders service's read path)."""


class LockWait(TransientFailure):
    """A saga waits on a semantic lock: its answer depends on points other sagas hold pending."""

    PREFIX = "waiting on a semantic lock"

    def __init__(self, customer: str, holders: list[str]) -> None:
        held = ", ".join(holders)
        message = f"{self.PREFIX}: points of {customer} held by {held}"
        super().__init__(StepName.DEDUCT_POINTS, message)
        self.customer = customer
        self.holders = holders


class Waiting(BaseModel):
    """A saga waiting on the points lock: whose points, held by which sagas, since when."""

    model_config = ConfigDict(frozen=True)

    saga_id: str
    customer_id: str
    held_by: list[str]
    since: float

    def __str__(self) -> str:
        return f"semantic lock: points of {self.customer_id} held by {', '.join(self.held_by)}"


def ledger(tx: Tx, saga_id: str, customer: str, delta: int, kind: str) -> None:
    tx.execute(
        "INSERT INTO ledger (saga_id, customer_id, delta, kind) VALUES (?, ?, ?, ?)",
        (saga_id, customer, delta, kind),
    )


def balance_of(tx: Tx, customer: str, *, lock: bool = False) -> int:
    """The customer's balance; with ``lock``, their account row is held until the commit."""
    held = tx.dialect.for_update() if lock else ""
    row = tx.fetchone(f"SELECT balance FROM accounts WHERE customer_id = ?{held}", (customer,))
    return int(row["balance"]) if row else 0


def refused(customer: str, points: int, noted: Audit) -> BusinessFailure:
    return BusinessFailure(
        StepName.DEDUCT_POINTS,
        Reason.INSUFFICIENT_POINTS,
        f"customer {customer} has fewer than {points} points",
        noted.into({}),
    )


def deduct(tx: Tx, req: StepRequest, noted: Audit) -> dict[str, Any]:
    """The guarded decrement, with the balance it read and wrote noted."""
    customer, points = req.order.customer_id, req.order.points_to_use
    taken = tx.execute(
        "UPDATE accounts SET balance = balance - ? WHERE customer_id = ? AND balance >= ?",
        (points, customer, points),
    )
    if not taken:
        noted.read(audit.points(customer), balance_of(tx, customer))
        raise refused(customer, points, noted)
    after = balance_of(tx, customer)  # read after the write: the row is ours until the commit
    noted.wrote(audit.points(customer), after, read=after + points)
    ledger(tx, req.saga_id, customer, -points, "deduct")
    return noted.into({"customer_id": customer, "points": points})


def take_at_once(tx: Tx, req: StepRequest, noted: Audit) -> dict[str, Any]:
    """Naive: the deduction is final at once; a refusal may rest on one given back later."""
    return deduct(tx, req, noted)


def claim_pending(tx: Tx, req: StepRequest, noted: Audit) -> dict[str, Any]:
    """Semantic lock (countermeasure): refuse only when pending points could not change the
    answer; when they could, wait (`LockWait`, naming every hold, ended or not: the caller asks
    which ended); a deduction made is held until its saga ends."""
    customer, points = req.order.customer_id, req.order.points_to_use
    # The account row locked before the balance and the holds are read: on Postgres (READ
    # COMMITTED) each statement sees what was committed when it began, so a restore committing
    # between the two reads showed the balance before it and the holds after it (the restored
    # saga's hold gone, its points not yet back) and refused on points given back: a dirty
    # read with the lock on. Locked, a restore in flight finishes first, or waits for this.
    balance = balance_of(tx, customer, lock=True)
    if balance >= points:
        done = deduct(tx, req, noted)
        if points:
            tx.execute(
                "INSERT INTO holds (saga_id, customer_id, points) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (req.saga_id, customer, points),
            )
        return done
    rows = tx.fetchall(
        "SELECT saga_id, points FROM holds WHERE customer_id = ? AND saga_id <> ? ORDER BY saga_id",
        (customer, req.saga_id),
    )
    if balance + sum(int(row["points"]) for row in rows) >= points:
        raise LockWait(customer, [str(row["saga_id"]) for row in rows])
    noted.read(audit.points(customer), balance)
    raise refused(customer, points, noted)


def release(tx: Tx, ended: Collection[str]) -> None:
    """Drop the holds of sagas that have ended: their points are final or given back."""
    for saga_id in sorted(ended):
        tx.execute("DELETE FROM holds WHERE saga_id = ?", (saga_id,))


Claim = Callable[[Tx, StepRequest, Audit], dict[str, Any]]


class PointsService(Service):
    def __init__(self, store: Store, countermeasures: Countermeasures = DEFAULT) -> None:
        super().__init__(store, countermeasures)
        self.claim: Claim = claim_pending if countermeasures.points_lock else take_at_once
        self.order_ends: OrderEnds | None = None
        """Set by the Domain: the orders service's read path, for the lock."""

    @property
    def reads_from(self) -> tuple[str, ...]:
        return ("orders",) if self.countermeasures.points_lock else ()

    async def deduct_points(self, req: StepRequest, within: Within | None = None) -> StepResult:
        """The deduction; with the lock on, the orders service is asked which holders ended
        only when their holds could change the answer, so a deduction the balance covers does
        no work that grows with its customer's sagas in flight."""
        try:
            return await self._deduct(req, within)
        except LockWait as waiting:
            ended = await self._ended(waiting.holders)
            if not ended:
                await self._note_wait(req.saga_id, waiting)
                raise
        # Committed on their own: a wait rolls its transaction back, and the holds of ended
        # sagas would stay to be asked about again.
        await self.store.run(lambda tx: release(tx, ended))
        try:
            return await self._deduct(req, within)
        except LockWait as waiting:
            await self._note_wait(req.saga_id, waiting)
            raise

    async def _deduct(self, req: StepRequest, within: Within | None) -> StepResult:
        def apply(tx: Tx) -> dict[str, Any]:
            return self.claim(tx, req, Audit())

        def settled(tx: Tx, result: StepResult) -> None:
            tx.execute("DELETE FROM lock_waits WHERE saga_id = ?", (req.saga_id,))
            if within is not None:
                within(tx, result)

        return await self._forward(req, StepName.DEDUCT_POINTS, apply, settled)

    async def _ended(self, holders: list[str]) -> set[str]:
        """Which of these holders' sagas have ended (their holds can go)."""
        if not holders or self.order_ends is None:
            return set()
        return await self.order_ends(holders)

    async def _note_wait(self, saga_id: str, waiting: LockWait) -> None:
        held = ",".join(waiting.holders)

        def work(tx: Tx) -> None:
            tx.execute(
                "INSERT INTO lock_waits (saga_id, customer_id, held_by, since) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (saga_id) DO UPDATE SET held_by = excluded.held_by",
                (saga_id, waiting.customer, held, time.time()),
            )

        await self.store.run(work, key=saga_id)

    async def restore_points(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            noted = Audit()
            customer, points = done["customer_id"], done["points"]
            tx.execute(
                "UPDATE accounts SET balance = balance + ? WHERE customer_id = ?",
                (points, customer),
            )
            after = balance_of(tx, customer)
            noted.wrote(audit.points(customer), after, read=after - points)
            tx.execute("DELETE FROM holds WHERE saga_id = ?", (req.saga_id,))
            ledger(tx, req.saga_id, customer, points, "restore")
            return noted.into({"points": points})

        return await self._compensate(
            req, StepName.RESTORE_POINTS, undo, within, undoes=StepName.DEDUCT_POINTS
        )

    async def waiting(self, saga_ids: Collection[str] | None = None) -> dict[str, Waiting]:
        """Sagas waiting on the points lock now (every one, or only ``saga_ids``)."""
        select = "SELECT saga_id, customer_id, held_by, since FROM lock_waits"
        rows = await rows_by_key(self.store, select, "saga_id", saga_ids)
        return {
            str(row["saga_id"]): Waiting(
                saga_id=row["saga_id"],
                customer_id=row["customer_id"],
                held_by=str(row["held_by"]).split(","),
                since=row["since"],
            )
            for row in rows
        }

    async def balances(self, customer_ids: Collection[str] | None = None) -> dict[str, int]:
        """Every account's balance, or only those of ``customer_ids`` when given."""
        rows = await rows_by_key(
            self.store, "SELECT customer_id, balance FROM accounts", "customer_id", customer_ids
        )
        return {row["customer_id"]: row["balance"] for row in rows}

    async def open_accounts(self, balances: dict[str, int]) -> None:
        """Add point accounts beside the others; an existing one is left as it is."""
        await self.store.run(
            lambda tx: tx.executemany(
                "INSERT INTO accounts (customer_id, balance) VALUES (?, ?) ON CONFLICT DO NOTHING",
                list(balances.items()),
            )
        )

    async def seed(self, balances: dict[str, int]) -> None:
        def work(tx: Tx) -> None:
            clear(tx, "lock_waits", "holds", "ledger", "accounts", "step_log")
            tx.executemany(
                "INSERT INTO accounts (customer_id, balance) VALUES (?, ?)",
                list(balances.items()),
            )

        await self.store.run(work)
