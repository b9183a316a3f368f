"""Orders: the order record and its status, the saga's last step and its final word."""

from __future__ import annotations

from collections.abc import Callable
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
from shared.errors import DuplicateOrder, StepRejected
from shared.services.base import STEP_LOG, Service, Within, clear
from shared.store import Migration, Tx, migrations

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


def close(
    tx: Tx, saga_id: str, status: SagaStatus, reason: ReasonId | None, within: PlaceHook | None
) -> bool:
    """Move a RUNNING order to its end; the hook runs only when this call moved it.

    An order waiting for an operator may still become COMPENSATED (a retried compensation
    succeeded); nothing else leaves an end once recorded.
    """
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
    if updated and within is not None:
        within(tx)
    return bool(updated)


class OrdersService(Service):
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
        def apply(tx: Tx) -> dict[str, Any]:
            updated = tx.execute(
                "UPDATE orders SET status = ? WHERE saga_id = ? AND status = ?",
                (SagaStatus.COMPLETED.value, req.saga_id, SagaStatus.RUNNING.value),
            )
            if not updated:
                raise StepRejected(
                    StepName.COMPLETE_ORDER, None, f"order of saga {req.saga_id} is not running"
                )
            return {"status": SagaStatus.COMPLETED.value}

        return await self._forward(req, StepName.COMPLETE_ORDER, apply, within)

    async def close(
        self,
        saga_id: str,
        status: SagaStatus,
        reason: ReasonId | None,
        within: PlaceHook | None = None,
    ) -> bool:
        """Record a saga's end that is not COMPLETED; True when this call recorded it."""
        return await self.store.run(
            lambda tx: close(tx, saga_id, status, reason, within), key=saga_id
        )

    async def records(self) -> list[OrderRecord]:
        rows = await self.store.query(
            "SELECT saga_id, order_id, total_cents, status, reason FROM orders ORDER BY saga_id"
        )
        return [OrderRecord(**dict(row)) for row in rows]

    async def reset(self) -> None:
        await self.store.run(lambda tx: clear(tx, "orders", "step_log"))
