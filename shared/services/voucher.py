"""Vouchers: each customer holds a few; an order redeems one before it ships, a compensation
gives it back. The extension example: a compensatable step with business state of its own,
added to the order saga by `shared/definitions.py` and this module alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.contracts import StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services import Effect, ServiceDef
from shared.services.base import STEP_LOG, Service, Within, rows_by_key
from shared.store import Migration, Tx, migrations

APPLY = "apply_voucher"
REVOKE = "revoke_voucher"
NO_VOUCHER = "no_voucher"
PER_CUSTOMER = 3
"""Vouchers every customer starts with."""

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "voucher",
        """
        CREATE TABLE vouchers (
            customer_id TEXT PRIMARY KEY,
            remaining INTEGER NOT NULL CHECK (remaining >= 0)
        );
        CREATE TABLE redemptions (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            revoked INTEGER NOT NULL DEFAULT 0
        )
        """,
    ),
)


class VoucherService(Service):
    async def apply_voucher(self, req: StepRequest, within: Within | None = None) -> StepResult:
        customer = req.order.customer_id

        def apply(tx: Tx) -> dict[str, Any]:
            taken = tx.execute(
                "UPDATE vouchers SET remaining = remaining - 1"
                " WHERE customer_id = ? AND remaining >= 1",
                (customer,),
            )
            if not taken:
                raise BusinessFailure(APPLY, NO_VOUCHER, f"customer {customer} has no voucher left")
            tx.execute(
                "INSERT INTO redemptions (saga_id, customer_id) VALUES (?, ?)",
                (req.saga_id, customer),
            )
            return {"customer_id": customer}

        return await self._forward(req, APPLY, apply, within)

    async def revoke_voucher(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            tx.execute(
                "UPDATE vouchers SET remaining = remaining + 1 WHERE customer_id = ?",
                (done["customer_id"],),
            )
            tx.execute("UPDATE redemptions SET revoked = 1 WHERE saga_id = ?", (req.saga_id,))
            return {"customer_id": done["customer_id"]}

        return await self._compensate(req, REVOKE, undo, within, undoes=APPLY)


class Vouchers:
    """The vouchers each customer has left: the service's part of a run's business state."""

    name = "vouchers"

    async def snapshot(self, service: Service) -> dict[str, int]:
        rows = await rows_by_key(
            service.store, "SELECT customer_id, remaining FROM vouchers", "customer_id"
        )
        return {row["customer_id"]: row["remaining"] for row in rows}

    async def open_accounts(self, service: Service, customers: Sequence[str]) -> None:
        await service.store.run(
            lambda tx: tx.executemany(
                "INSERT INTO vouchers (customer_id, remaining) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                [(customer, PER_CUSTOMER) for customer in customers],
            )
        )

    def expected(self, customers: Sequence[str], effects: Sequence[Effect]) -> dict[str, int]:
        left = dict.fromkeys(customers, PER_CUSTOMER)
        for order, remains in effects:
            if APPLY in remains:
                left[order.customer_id] -= 1
        return dict(sorted(left.items()))


SERVICE = ServiceDef(VoucherService, MIGRATIONS, Vouchers())
"""The voucher service as a definition registers it."""
