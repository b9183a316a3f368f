"""Orders: the order record and its status, the saga's last step and its final word."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.contracts import (
    OrderRecord,
    OrderRequest,
    ReasonId,
    SagaStatus,
    StepName,
    StepRequest,
    StepResult,
)
from shared.errors import DuplicateOrder, StepRejected
from shared.services.base import STEP_LOG, Service, Within, clear
from shared.store import Migration, Tx, migrations

PlaceHook = Callable[[Tx], None]
"""Extra writes committed with the order record (the choreography's outbox row)."""

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


def place(tx: Tx, saga_id: str, order: OrderRequest, within: PlaceHook | None) -> None:
    """The order record, RUNNING, once per saga; the hook runs only for the first placement.

    The same saga placing again is a no-op; another saga with the same order id is refused
    (DuplicateOrder), and the caller's transaction rolls back with nothing changed.
    """
    inserted = tx.execute(
        "INSERT INTO orders (saga_id, order_id, customer_id, total_cents, body, status)"
        " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            saga_id,
            order.order_id,
            order.customer_id,
            order.total_cents,
            order.model_dump_json(),
            SagaStatus.RUNNING.value,
        ),
    )
    if inserted:
        if within is not None:
            within(tx)
        return
    row = tx.fetchone("SELECT saga_id FROM orders WHERE order_id = ?", (order.order_id,))
    if row is not None and row["saga_id"] != saga_id:
        raise DuplicateOrder(order.order_id, row["saga_id"])


def close(
    tx: Tx, saga_id: str, status: SagaStatus, reason: ReasonId | None, within: PlaceHook | None
) -> bool:
    """Move a RUNNING order to its end; the hook runs only when this call moved it.

    An order waiting for an operator may still become COMPENSATED (a retried compensation
    succeeded), or COMPLETED by an operator's retry of its completion (`complete_order`);
    nothing else leaves an end once recorded.
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
        self, saga_id: str, order: OrderRequest, within: PlaceHook | None = None
    ) -> None:
        """Record the order as RUNNING (once per saga) before the first step."""
        await self.store.run(lambda tx: place(tx, saga_id, order, within), key=saga_id)

    async def complete_order(self, req: StepRequest, within: Within | None = None) -> StepResult:
        """The order COMPLETED: from RUNNING, or, on an operator's retry of this step (round
        n), from NEEDS_INTERVENTION, where the refused completion left it."""
        waited = SagaStatus.NEEDS_INTERVENTION if req.round else SagaStatus.RUNNING

        def apply(tx: Tx) -> dict[str, Any]:
            updated = tx.execute(
                "UPDATE orders SET status = ? WHERE saga_id = ? AND status IN (?, ?)",
                (
                    SagaStatus.COMPLETED.value,
                    req.saga_id,
                    SagaStatus.RUNNING.value,
                    waited.value,
                ),
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
