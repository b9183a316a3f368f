"""Inventory: stock per product; a multi-line order reserves every line or none."""

from __future__ import annotations

from typing import Any

from shared.contracts import OrderRequest, Reason, StepName, StepRequest, StepResult
from shared.errors import BusinessFailure, InvalidOrder
from shared.services.base import STEP_LOG, Service, Within
from shared.store import Tx

MIGRATIONS = [
    STEP_LOG
    + """;
    CREATE TABLE products (
        product_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        price_cents INTEGER NOT NULL CHECK (price_cents >= 0),
        stock INTEGER NOT NULL CHECK (stock >= 0)
    );
    CREATE TABLE reservations (
        saga_id TEXT NOT NULL,
        product_id TEXT NOT NULL REFERENCES products (product_id),
        quantity INTEGER NOT NULL CHECK (quantity > 0),
        released INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (saga_id, product_id)
    )
    """
]


class InventoryService(Service):
    async def reserve_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        async def apply(tx: Tx) -> dict[str, Any]:
            for item in req.order.items:
                await self._take(tx, req.saga_id, item.product_id, item.quantity)
            return {"lines": {i.product_id: i.quantity for i in req.order.items}}

        return await self._forward(req, StepName.RESERVE_INVENTORY, apply, within)

    async def _take(self, tx: Tx, saga_id: str, product_id: str, quantity: int) -> None:
        # The guarded decrement is the whole race story: it never drives stock negative.
        taken = await tx.execute(
            "UPDATE products SET stock = stock - ? WHERE product_id = ? AND stock >= ?",
            (quantity, product_id, quantity),
        )
        if not taken:
            raise BusinessFailure(
                StepName.RESERVE_INVENTORY,
                Reason.OUT_OF_STOCK,
                f"not enough stock of {product_id} for {quantity}",
            )
        await tx.execute(
            "INSERT INTO reservations (saga_id, product_id, quantity) VALUES (?, ?, ?)",
            (saga_id, product_id, quantity),
        )

    async def release_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        async def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            for product_id, quantity in done["lines"].items():
                await tx.execute(
                    "UPDATE products SET stock = stock + ? WHERE product_id = ?",
                    (quantity, product_id),
                )
            await tx.execute(
                "UPDATE reservations SET released = 1 WHERE saga_id = ?", (req.saga_id,)
            )
            return {"released": done["lines"]}

        return await self._compensate(req, StepName.RELEASE_INVENTORY, undo, within)

    async def check_catalogue(self, order: OrderRequest) -> None:
        """Refuse an order naming a product the catalogue lacks, before any saga starts."""
        rows = await self.store.read("SELECT product_id FROM products")
        check_products(order, {row["product_id"] for row in rows})

    async def stock(self) -> dict[str, int]:
        rows = await self.store.read("SELECT product_id, stock FROM products ORDER BY product_id")
        return {row["product_id"]: row["stock"] for row in rows}

    async def reserved(self) -> dict[str, dict[str, int]]:
        rows = await self.store.read(
            "SELECT saga_id, product_id, quantity FROM reservations WHERE released = 0"
            " ORDER BY saga_id, product_id"
        )
        held: dict[str, dict[str, int]] = {}
        for row in rows:
            held.setdefault(row["saga_id"], {})[row["product_id"]] = row["quantity"]
        return held

    async def seed(self, products: dict[str, tuple[str, int, int]]) -> None:
        """Replace the catalogue: product id -> (name, price in cents, stock)."""
        async with self.store.transaction() as tx:
            for table in ("reservations", "products", "step_log"):
                await tx.execute(f"DELETE FROM {table}")
            for product_id, (name, price, stock) in products.items():
                await tx.execute(
                    "INSERT INTO products (product_id, name, price_cents, stock)"
                    " VALUES (?, ?, ?, ?)",
                    (product_id, name, price, stock),
                )


def check_products(order: OrderRequest, known: set[str]) -> None:
    """Raise InvalidOrder naming the first line whose product is not in ``known``."""
    for index, item in enumerate(order.items):
        if item.product_id not in known:
            raise InvalidOrder(
                f"items[{index}].product_id: unknown product {item.product_id!r};"
                " see `saga-compare catalogue` for the products"
            )
