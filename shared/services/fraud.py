"""Fraud screening: version 2 of the order saga checks every order before it is charged.

``fraud_check`` refuses an order (reason ``fraud_suspected``) whose customer is on the
blocklist or whose total is over `LIMIT_CENTS`; otherwise it records a clearance. Its
compensation ``void_fraud_check`` voids the clearance of an order that did not go through, so
the clearances left are exactly those of orders whose check still stands — the service's part
of a run's business state (`Clearances`, conserved like the vouchers are).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.contracts import StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services import Effect, ServiceDef
from shared.services.base import STEP_LOG, Service, Within, rows_by_key
from shared.store import Migration, Tx, migrations

CHECK = "fraud_check"
VOID = "void_fraud_check"
SUSPECTED = "fraud_suspected"
LIMIT_CENTS = 200_000
"""An order over 2,000.00 is refused until a person has looked at it."""

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "fraud",
        """
        CREATE TABLE blocklist (
            customer_id TEXT PRIMARY KEY,
            why TEXT NOT NULL
        );
        CREATE TABLE clearances (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            amount_cents INTEGER NOT NULL,
            voided INTEGER NOT NULL DEFAULT 0
        )
        """,
    ),
)


class FraudService(Service):
    async def fraud_check(self, req: StepRequest, within: Within | None = None) -> StepResult:
        order = req.order

        def apply(tx: Tx) -> dict[str, Any]:
            blocked = tx.fetchone(
                "SELECT why FROM blocklist WHERE customer_id = ?", (order.customer_id,)
            )
            if blocked is not None:
                why = blocked["why"]
                message = f"customer {order.customer_id} is blocked ({why})"
                raise BusinessFailure(CHECK, SUSPECTED, message)
            if order.total_cents > LIMIT_CENTS:
                message = (
                    f"order total {order.total_cents / 100:.2f} is over the limit "
                    f"{LIMIT_CENTS / 100:.2f}"
                )
                raise BusinessFailure(CHECK, SUSPECTED, message)
            tx.execute(
                "INSERT INTO clearances (saga_id, customer_id, amount_cents) VALUES (?, ?, ?)",
                (req.saga_id, order.customer_id, order.total_cents),
            )
            return {"customer_id": order.customer_id}

        return await self._forward(req, CHECK, apply, within)

    async def void_fraud_check(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            tx.execute("UPDATE clearances SET voided = 1 WHERE saga_id = ?", (req.saga_id,))
            return {"customer_id": done["customer_id"]}

        return await self._compensate(req, VOID, undo, within, undoes=CHECK)

    async def block(self, customer_id: str, why: str) -> None:
        """Put a customer on the blocklist (an analyst's decision): their orders are refused."""
        await self.store.run(
            lambda tx: tx.execute(
                "INSERT INTO blocklist (customer_id, why) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (customer_id, why),
            )
        )


class Clearances:
    """Each customer's clearances still standing: the service's part of a run's state."""

    name = "clearances"

    async def snapshot(self, service: Service) -> dict[str, int]:
        rows = await rows_by_key(
            service.store,
            "SELECT customer_id, count(*) AS n FROM clearances WHERE voided = 0"
            " GROUP BY customer_id",
            "customer_id",
        )
        return {row["customer_id"]: row["n"] for row in rows}

    async def open_accounts(self, service: Service, customers: Sequence[str]) -> None:
        """Nothing to seed: a customer starts with no clearance and off the blocklist."""

    def expected(self, customers: Sequence[str], effects: Sequence[Effect]) -> dict[str, int]:
        standing: dict[str, int] = {}
        for order, remains in effects:
            if CHECK in remains:
                standing[order.customer_id] = standing.get(order.customer_id, 0) + 1
        return dict(sorted(standing.items()))


SERVICE = ServiceDef(FraudService, MIGRATIONS, Clearances())
"""The fraud service as version 2 of the order saga registers it."""
