"""Inventory: stock per product; a multi-line order reserves every line or none."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from shared.contracts import LineItem, Reason, StepName, StepRequest, StepResult
from shared.errors import BusinessFailure
from shared.services.base import STEP_LOG, Service, Within, clear, rows_by_key
from shared.store import Migration, Tx, migrations

MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "inventory",
        """
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
        """,
    ),
)


def in_lock_order(items: list[LineItem]) -> list[LineItem]:
    """Lines by product id: concurrent reservations lock product rows in one order (no deadlock)."""
    return sorted(items, key=lambda item: item.product_id)


def take(tx: Tx, saga_id: str, product_id: str, quantity: int) -> None:
    """Reserve one line, or raise OUT_OF_STOCK (the step's savepoint undoes the other lines)."""
    # The guarded decrement is the whole race story: it never drives stock negative.
    taken = tx.execute(
        "UPDATE products SET stock = stock - ? WHERE product_id = ? AND stock >= ?",
        (quantity, product_id, quantity),
    )
    if not taken:
        raise BusinessFailure(
            StepName.RESERVE_INVENTORY,
            Reason.OUT_OF_STOCK,
            f"not enough stock of {product_id} for {quantity}",
        )
    tx.execute(
        "INSERT INTO reservations (saga_id, product_id, quantity) VALUES (?, ?, ?)",
        (saga_id, product_id, quantity),
    )


def release(tx: Tx, saga_id: str, lines: dict[str, int]) -> None:
    """Put every reserved line back on the shelf (in the same lock order as `take`)."""
    for product_id, quantity in sorted(lines.items()):
        tx.execute(
            "UPDATE products SET stock = stock + ? WHERE product_id = ?", (quantity, product_id)
        )
    tx.execute("UPDATE reservations SET released = 1 WHERE saga_id = ?", (saga_id,))


class InventoryService(Service):
    async def reserve_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def apply(tx: Tx) -> dict[str, Any]:
            for item in in_lock_order(req.order.items):
                take(tx, req.saga_id, item.product_id, item.quantity)
            return {"lines": {i.product_id: i.quantity for i in req.order.items}}

        return await self._forward(req, StepName.RESERVE_INVENTORY, apply, within)

    async def release_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            release(tx, req.saga_id, done["lines"])
            return {"released": done["lines"]}

        return await self._compensate(
            req, StepName.RELEASE_INVENTORY, undo, within, undoes=StepName.RESERVE_INVENTORY
        )

    async def listings(
        self, product_ids: Collection[str] | None = None
    ) -> dict[str, tuple[str, int]]:
        """The catalogue as sold: product id -> (name, price in cents); only ``product_ids``
        when given (an order's admission reads its own lines, not the whole catalogue)."""
        select = "SELECT product_id, name, price_cents FROM products"
        rows = await rows_by_key(self.store, select, "product_id", product_ids)
        return {row["product_id"]: (row["name"], row["price_cents"]) for row in rows}

    async def stock(self) -> dict[str, int]:
        rows = await self.store.query("SELECT product_id, stock FROM products ORDER BY product_id")
        return {row["product_id"]: row["stock"] for row in rows}

    async def reserved(self) -> dict[str, dict[str, int]]:
        rows = await self.store.query(
            "SELECT saga_id, product_id, quantity FROM reservations WHERE released = 0"
            " ORDER BY saga_id, product_id"
        )
        held: dict[str, dict[str, int]] = {}
        for row in rows:
            held.setdefault(row["saga_id"], {})[row["product_id"]] = row["quantity"]
        return held

    async def stock_up(self, products: dict[str, tuple[str, int, int]]) -> None:
        """Add products (id -> name, price in cents, stock) beside the catalogue; an id
        already there is left as it is (a deployment is never wiped)."""
        await self.store.run(
            lambda tx: tx.executemany(
                "INSERT INTO products (product_id, name, price_cents, stock) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [(pid, name, price, stock) for pid, (name, price, stock) in products.items()],
            )
        )

    async def seed(self, products: dict[str, tuple[str, int, int]]) -> None:
        """Replace the catalogue: product id -> (name, price in cents, stock)."""

        def work(tx: Tx) -> None:
            clear(tx, "reservations", "products", "step_log")
            tx.executemany(
                "INSERT INTO products (product_id, name, price_cents, stock) VALUES (?, ?, ?, ?)",
                [(pid, name, price, stock) for pid, (name, price, stock) in products.items()],
            )

        await self.store.run(work)
