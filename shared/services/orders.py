"""Orders: the order record and its status, the saga's last step and its final word."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.contracts import (
    OrderRecord,
    OrderRequest,
    Reason,
    SagaStatus,
    StepName,
    StepRequest,
    StepResult,
)
from shared.errors import StepRejected
from shared.services.base import STEP_LOG, Service, Within
from shared.store import Tx

PlaceHook = Callable[[Tx], Awaitable[None]]
"""Extra writes committed with the order record (the choreography's outbox row)."""

MIGRATIONS = [
    STEP_LOG
    + """;
    CREATE TABLE orders (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        total_cents INTEGER NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT
    )
    """
]


class OrdersService(Service):
    async def place(
        self, saga_id: str, order: OrderRequest, within: PlaceHook | None = None
    ) -> None:
        """Record the order as RUNNING (once per saga) before the first step."""
        async with self.store.transaction() as tx:
            inserted = await tx.execute(
                "INSERT OR IGNORE INTO orders"
                " (saga_id, order_id, customer_id, total_cents, body, status)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    saga_id,
                    order.order_id,
                    order.customer_id,
                    order.total_cents,
                    order.model_dump_json(),
                    SagaStatus.RUNNING.value,
                ),
            )
            if inserted and within is not None:
                await within(tx)

    async def complete_order(self, req: StepRequest, within: Within | None = None) -> StepResult:
        async def apply(tx: Tx) -> dict[str, Any]:
            updated = await tx.execute(
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
        reason: Reason | None,
        within: PlaceHook | None = None,
    ) -> bool:
        """Record a saga's end that is not COMPLETED; True when this call recorded it."""
        async with self.store.transaction() as tx:
            updated = await tx.execute(
                "UPDATE orders SET status = ?, reason = ? WHERE saga_id = ? AND status = ?",
                (status.value, reason.value if reason else None, saga_id, SagaStatus.RUNNING.value),
            )
            if updated and within is not None:
                await within(tx)
        return bool(updated)

    async def records(self) -> list[OrderRecord]:
        rows = await self.store.read(
            "SELECT saga_id, order_id, total_cents, status, reason FROM orders ORDER BY saga_id"
        )
        return [OrderRecord(**dict(row)) for row in rows]

    async def reset(self) -> None:
        async with self.store.transaction() as tx:
            for table in ("orders", "step_log"):
                await tx.execute(f"DELETE FROM {table}")
