"""Loyalty points: balances that never go negative, and a ledger of every movement."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shared.contracts import Reason, StepName, StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services.base import STEP_LOG, Service, Within, clear, rows_by_key
from shared.store import Migration, Tx, migrations

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
    ),
)


def ledger(tx: Tx, saga_id: str, customer: str, delta: int, kind: str) -> None:
    tx.execute(
        "INSERT INTO ledger (saga_id, customer_id, delta, kind) VALUES (?, ?, ?, ?)",
        (saga_id, customer, delta, kind),
    )


class PointsService(Service):
    async def deduct_points(self, req: StepRequest, within: Within | None = None) -> StepResult:
        order = req.order

        def apply(tx: Tx) -> dict[str, Any]:
            points = order.points_to_use
            taken = tx.execute(
                "UPDATE accounts SET balance = balance - ? WHERE customer_id = ? AND balance >= ?",
                (points, order.customer_id, points),
            )
            if not taken:
                raise BusinessFailure(
                    StepName.DEDUCT_POINTS,
                    Reason.INSUFFICIENT_POINTS,
                    f"customer {order.customer_id} has fewer than {points} points",
                )
            ledger(tx, req.saga_id, order.customer_id, -points, "deduct")
            return {"customer_id": order.customer_id, "points": points}

        return await self._forward(req, StepName.DEDUCT_POINTS, apply, within)

    async def restore_points(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            tx.execute(
                "UPDATE accounts SET balance = balance + ? WHERE customer_id = ?",
                (done["points"], done["customer_id"]),
            )
            ledger(tx, req.saga_id, done["customer_id"], done["points"], "restore")
            return {"points": done["points"]}

        return await self._compensate(
            req, StepName.RESTORE_POINTS, undo, within, undoes=StepName.DEDUCT_POINTS
        )

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
            clear(tx, "ledger", "accounts", "step_log")
            tx.executemany(
                "INSERT INTO accounts (customer_id, balance) VALUES (?, ?)",
                list(balances.items()),
            )

        await self.store.run(work)
