"""Shipping: shipments for deliverable addresses; cancelling one is the pivot's compensation."""

from __future__ import annotations

from typing import Any

from shared.contracts import Reason, Shipment, StepName, StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services.audit import Audit, shipment
from shared.services.base import STEP_LOG, Service, Within, clear
from shared.store import Migration, Tx, migrations

DELIVERABLE = frozenset({"US", "CA", "GB", "IE", "DE", "FR", "NL", "BE", "ES", "IT"})

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "shipping",
        """
        CREATE TABLE shipments (
            saga_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            country TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('created', 'cancelled'))
        )
        """,
    ),
)


class ShippingService(Service):
    async def create_shipment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        address = req.order.shipping_address

        def apply(tx: Tx) -> dict[str, Any]:
            if address.country not in DELIVERABLE:
                raise BusinessFailure(
                    StepName.CREATE_SHIPMENT,
                    Reason.SHIPMENT_FAILED,
                    f"no carrier delivers to {address.country}",
                )
            tx.execute(
                "INSERT INTO shipments (saga_id, order_id, country, status)"
                " VALUES (?, ?, ?, 'created')",
                (req.saga_id, req.order.order_id, address.country),
            )
            noted = Audit()
            noted.wrote(shipment(req.saga_id), "created")
            return noted.into({"country": address.country})

        return await self._forward(req, StepName.CREATE_SHIPMENT, apply, within)

    async def cancel_shipment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            tx.execute(
                "UPDATE shipments SET status = 'cancelled' WHERE saga_id = ?", (req.saga_id,)
            )
            noted = Audit()
            noted.wrote(shipment(req.saga_id), "cancelled", read="created")
            return noted.into({"cancelled": True})

        return await self._compensate(
            req, StepName.CANCEL_SHIPMENT, undo, within, undoes=StepName.CREATE_SHIPMENT
        )

    async def shipments(self) -> list[Shipment]:
        rows = await self.store.query(
            "SELECT saga_id, order_id, status FROM shipments ORDER BY saga_id"
        )
        return [Shipment(**dict(row)) for row in rows]

    async def reset(self) -> None:
        await self.store.run(lambda tx: clear(tx, "shipments", "step_log"))
