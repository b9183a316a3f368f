"""Payment: a card-gateway simulator with charges and refunds, one charge per saga at most."""

from __future__ import annotations

from typing import Any

from shared.contracts import Charge, Reason, StepName, StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services.base import STEP_LOG, Service, Within, clear
from shared.store import Migration, Tx, migrations

DECLINED_SUFFIX = "0002"
"""Like the gateways' test cards: a method ending in 0002 is always declined."""

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "payment",
        """
        CREATE TABLE charges (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            method TEXT NOT NULL,
            amount_cents INTEGER NOT NULL CHECK (amount_cents >= 0),
            refunded_cents INTEGER NOT NULL DEFAULT 0 CHECK (refunded_cents <= amount_cents)
        )
        """,
    ),
)


class PaymentService(Service):
    async def charge_payment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        order = req.order

        def apply(tx: Tx) -> dict[str, Any]:
            if order.payment_method.endswith(DECLINED_SUFFIX):
                raise BusinessFailure(
                    StepName.CHARGE_PAYMENT,
                    Reason.PAYMENT_DECLINED,
                    f"card {order.payment_method} declined",
                )
            # saga_id is the primary key: a second charge for one order cannot exist.
            tx.execute(
                "INSERT INTO charges (saga_id, customer_id, method, amount_cents)"
                " VALUES (?, ?, ?, ?)",
                (req.saga_id, order.customer_id, order.payment_method, order.total_cents),
            )
            return self.charged(order.total_cents)

        return await self._forward(req, StepName.CHARGE_PAYMENT, apply, within)

    async def refund_payment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            tx.execute(
                "UPDATE charges SET refunded_cents = amount_cents WHERE saga_id = ?",
                (req.saga_id,),
            )
            return {"refunded_cents": self.charged_cents(done)}

        return await self._compensate(
            req, StepName.REFUND_PAYMENT, undo, within, undoes=StepName.CHARGE_PAYMENT
        )

    def charged(self, cents: int) -> dict[str, Any]:
        """What the charge reports (its result detail, in the step log): cents in version 1."""
        return {"amount_cents": cents}

    def charged_cents(self, detail: dict[str, Any]) -> int:
        """The amount a recorded charge took, read back from its detail for the refund."""
        return int(detail["amount_cents"])

    async def charges(self) -> list[Charge]:
        rows = await self.store.query(
            "SELECT saga_id, customer_id, amount_cents, refunded_cents"
            " FROM charges ORDER BY saga_id"
        )
        return [Charge(**dict(row)) for row in rows]

    async def reset(self) -> None:
        await self.store.run(lambda tx: clear(tx, "charges", "step_log"))
