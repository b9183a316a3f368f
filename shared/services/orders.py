"""Orders: the order record and its status, the saga's last step and its final word.

With the semantic lock on the order (`Countermeasures.order_lock`, the default) its status moves
only from its pending state: RUNNING to COMPLETED (the last step), RUNNING to an end the saga
records otherwise, NEEDS_INTERVENTION to COMPENSATED (a retried compensation) or to COMPLETED (an
operator's retry of the completion). Off, every write of the status is blind and the last one wins:
a completion arriving after the saga recorded its cancel overwrites it (a lost update).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from shared.contracts import (
    OrderRecord,
    OrderRequest,
    ReasonId,
    SagaStatus,
    StepName,
    StepRequest,
    StepResult,
    as_reason,
)
from shared.countermeasures import DEFAULT, Countermeasures
from shared.errors import DuplicateOrder, StepRejected
from shared.services import audit
from shared.services.audit import Audit
from shared.services.base import STEP_LOG, Service, Within, clear, rows_by_key
from shared.store import Migration, Store, Tx, migrations

PlaceHook = Callable[[Tx], None]
"""Extra writes committed with the order record (the choreography's outbox row)."""


@dataclass(frozen=True)
class Placement:
    """What the orders service recorded for a saga's order: admitted (RUNNING, whatever it
    became since) or REJECTED with its reason; ``first`` when this call recorded it."""

    status: SagaStatus
    reason: ReasonId | None = None
    first: bool = False

    @property
    def rejected(self) -> bool:
        return self.status is SagaStatus.REJECTED


MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "orders",
        """
        CREATE TABLE orders (
            saga_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            customer_id TEXT NOT NULL,
            total_cents INTEGER NOT NULL,
            body TEXT NOT NULL,
            status TEXT NOT NULL,
            reason TEXT
        )
        """,
        "CREATE UNIQUE INDEX orders_order_id ON orders (order_id)",
    ),
)
"""Version 2: an order id is placed once, whatever saga id carries it."""


def place(
    tx: Tx,
    saga_id: str,
    order: OrderRequest,
    within: PlaceHook | None,
    rejected: ReasonId | None = None,
) -> Placement:
    """The order record, once per saga: RUNNING, or REJECTED for ``rejected`` (an order the
    services refused on arrival); the hook runs only for the first placement.

    The same saga placing again changes nothing and returns what was recorded first (a
    rejection stays one, an admitted order stays admitted); another saga with the same order
    id is refused (DuplicateOrder), and the caller's transaction rolls back with nothing
    changed.
    """
    status = SagaStatus.RUNNING if rejected is None else SagaStatus.REJECTED
    inserted = tx.execute(
        "INSERT INTO orders (saga_id, order_id, customer_id, total_cents, body, status, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            saga_id,
            order.order_id,
            order.customer_id,
            order.total_cents,
            order.model_dump_json(),
            status.value,
            str(rejected) if rejected is not None else None,
        ),
    )
    if inserted:
        if within is not None:
            within(tx)
        return Placement(status, rejected, first=True)
    mine = tx.fetchone("SELECT status, reason FROM orders WHERE saga_id = ?", (saga_id,))
    if mine is not None:
        if mine["status"] == SagaStatus.REJECTED.value:
            return Placement(SagaStatus.REJECTED, as_reason(mine["reason"]))
        return Placement(SagaStatus.RUNNING)
    row = tx.fetchone("SELECT saga_id FROM orders WHERE order_id = ?", (order.order_id,))
    assert row is not None, "an insert that conflicted on neither key"
    raise DuplicateOrder(order.order_id, row["saga_id"])


Close = Callable[[Tx, str, SagaStatus, ReasonId | None], bool]
"""Record a saga's end that is not COMPLETED; True when the status was written."""
Complete = Callable[[Tx, str, SagaStatus, Audit], None]
"""Record a saga's completion (the last step), or raise StepRejected; the status is the pending
one it completes besides RUNNING (NEEDS_INTERVENTION on an operator's retry of the step)."""


def close_checked(tx: Tx, saga_id: str, status: SagaStatus, reason: ReasonId | None) -> bool:
    """Semantic lock (countermeasure): only a RUNNING order takes an end; one waiting for an
    operator may still become COMPENSATED (a retried compensation succeeded), or COMPLETED by
    an operator's retry of its completion (`complete_checked`); nothing else leaves an end."""
    waiting = SagaStatus.NEEDS_INTERVENTION.value if status is SagaStatus.COMPENSATED else ""
    updated = tx.execute(
        "UPDATE orders SET status = ?, reason = ? WHERE saga_id = ? AND status IN (?, ?)",
        (
            status.value,
            str(reason) if reason else None,
            saga_id,
            SagaStatus.RUNNING.value,
            waiting,
        ),
    )
    return bool(updated)


def close_blind(tx: Tx, saga_id: str, status: SagaStatus, reason: ReasonId | None) -> bool:
    """Naive: the end is written whatever the status is now."""
    current = tx.fetchone("SELECT status FROM orders WHERE saga_id = ?", (saga_id,))
    tx.execute(
        "UPDATE orders SET status = ?, reason = ? WHERE saga_id = ?",
        (status.value, str(reason) if reason else None, saga_id),
    )
    # The end is reported recorded once (the variants act on it once), as with the lock.
    return current is not None and current["status"] != status.value


def complete_checked(tx: Tx, saga_id: str, waited: SagaStatus, noted: Audit) -> None:
    """Semantic lock (countermeasure): only a RUNNING order completes, or one in ``waited``
    (NEEDS_INTERVENTION, where a refused completion left it, on an operator's retry)."""
    row = tx.fetchone("SELECT status FROM orders WHERE saga_id = ?", (saga_id,))
    status = str(row["status"]) if row else ""
    noted.read(audit.order(saga_id), status)
    if status not in (SagaStatus.RUNNING.value, waited.value):
        raise StepRejected(
            StepName.COMPLETE_ORDER, None, f"order of saga {saga_id} is not running", noted.into({})
        )
    tx.execute(
        "UPDATE orders SET status = ? WHERE saga_id = ?", (SagaStatus.COMPLETED.value, saga_id)
    )
    noted.wrote(audit.order(saga_id), SagaStatus.COMPLETED.value, read=status)


def complete_blind(tx: Tx, saga_id: str, waited: SagaStatus, noted: Audit) -> None:
    """Naive: the order is marked COMPLETED whatever it says now (the last write wins)."""
    updated = tx.execute(
        "UPDATE orders SET status = ? WHERE saga_id = ?", (SagaStatus.COMPLETED.value, saga_id)
    )
    if not updated:
        raise StepRejected(StepName.COMPLETE_ORDER, None, f"saga {saga_id} placed no order")
    noted.wrote(audit.order(saga_id), SagaStatus.COMPLETED.value)


class OrdersService(Service):
    def __init__(self, store: Store, countermeasures: Countermeasures = DEFAULT) -> None:
        super().__init__(store, countermeasures)
        locked = countermeasures.order_lock
        self.close_order: Close = close_checked if locked else close_blind
        self.complete: Complete = complete_checked if locked else complete_blind

    async def place(
        self,
        saga_id: str,
        order: OrderRequest,
        within: PlaceHook | None = None,
        *,
        rejected: ReasonId | None = None,
    ) -> Placement:
        """Record the order (once per saga) before the first step: RUNNING, or REJECTED for
        ``rejected``; returns what is recorded (`place`)."""
        return await self.store.run(
            lambda tx: place(tx, saga_id, order, within, rejected), key=saga_id
        )

    async def complete_order(self, req: StepRequest, within: Within | None = None) -> StepResult:
        """The order COMPLETED: from RUNNING, or, on an operator's retry of this step (round
        n), from NEEDS_INTERVENTION, where the refused completion left it."""
        waited = SagaStatus.NEEDS_INTERVENTION if req.round else SagaStatus.RUNNING

        def apply(tx: Tx) -> dict[str, Any]:
            noted = Audit()
            self.complete(tx, req.saga_id, waited, noted)
            return noted.into({"status": SagaStatus.COMPLETED.value})

        return await self._forward(req, StepName.COMPLETE_ORDER, apply, within)

    async def close(
        self,
        saga_id: str,
        status: SagaStatus,
        reason: ReasonId | None,
        within: PlaceHook | None = None,
    ) -> bool:
        """Record a saga's end that is not COMPLETED; True when this call recorded it."""

        def work(tx: Tx) -> bool:
            updated = self.close_order(tx, saga_id, status, reason)
            if updated and within is not None:
                within(tx)
            return updated

        return await self.store.run(work, key=saga_id)

    async def ends(self, saga_ids: Collection[str]) -> set[str]:
        """Which of these sagas have ended: their order is no longer RUNNING (read path)."""
        select = "SELECT saga_id, status FROM orders"
        rows = await rows_by_key(self.store, select, "saga_id", saga_ids)
        return {str(row["saga_id"]) for row in rows if row["status"] != SagaStatus.RUNNING.value}

    async def records(self) -> list[OrderRecord]:
        rows = await self.store.query(
            "SELECT saga_id, order_id, total_cents, status, reason FROM orders ORDER BY saga_id"
        )
        return [OrderRecord(**dict(row)) for row in rows]

    async def reset(self) -> None:
        await self.store.run(lambda tx: clear(tx, "orders", "step_log"))
