"""Inventory: stock per product; a multi-line order reserves every line or none.

A reservation records the stock it read (``stock_before``) and each step its audit
(`shared/services/audit.py`). Its release is a commutative update (the quantity added back)
unless the countermeasure is off: then it writes back the stock the reservation read, a
snapshot that wipes out whatever other sagas reserved or released meanwhile (a lost update).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from shared.contracts import LineItem, Reason, StepName, StepRequest, StepResult
from shared.countermeasures import DEFAULT, Countermeasures
from shared.errors import BusinessFailure
from shared.services import audit
from shared.services.audit import Audit
from shared.services.base import STEP_LOG, Service, Within, clear, rows_by_key
from shared.store import Migration, Store, Tx, migrations

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


def stock_of(tx: Tx, product_id: str) -> int:
    row = tx.fetchone("SELECT stock FROM products WHERE product_id = ?", (product_id,))
    return int(row["stock"]) if row else 0


def take(tx: Tx, saga_id: str, product_id: str, quantity: int, noted: Audit) -> int:
    """Reserve one line, or raise OUT_OF_STOCK (the step's savepoint undoes the other lines);
    returns the stock it read."""
    # The guarded decrement is the whole race story: it never drives stock negative.
    taken = tx.execute(
        "UPDATE products SET stock = stock - ? WHERE product_id = ? AND stock >= ?",
        (quantity, product_id, quantity),
    )
    if not taken:
        noted.read(audit.stock(product_id), stock_of(tx, product_id))
        raise BusinessFailure(
            StepName.RESERVE_INVENTORY,
            Reason.OUT_OF_STOCK,
            f"not enough stock of {product_id} for {quantity}",
            noted.into({}),
        )
    # Read after the write: the row is ours until the commit, on every backend.
    after = stock_of(tx, product_id)
    noted.wrote(audit.stock(product_id), after, read=after + quantity)
    tx.execute(
        "INSERT INTO reservations (saga_id, product_id, quantity) VALUES (?, ?, ?)",
        (saga_id, product_id, quantity),
    )
    return after + quantity


Release = Callable[[Tx, str, dict[str, Any], Audit], None]
"""A reservation's undo: ``(tx, saga_id, the reservation's detail, audit)``."""


def release(tx: Tx, saga_id: str, done: dict[str, Any], noted: Audit) -> None:
    """Commutative updates (countermeasure): every reserved line is added back to the stock as
    it is now, whatever other sagas did since (in the same lock order as `take`)."""
    for product_id, quantity in sorted(done["lines"].items()):
        tx.execute(
            "UPDATE products SET stock = stock + ? WHERE product_id = ?", (quantity, product_id)
        )
        after = stock_of(tx, product_id)
        noted.wrote(audit.stock(product_id), after, read=after - quantity)
    tx.execute("UPDATE reservations SET released = 1 WHERE saga_id = ?", (saga_id,))


def restore_snapshot(tx: Tx, saga_id: str, done: dict[str, Any], noted: Audit) -> None:
    """Naive: the stock is set back to what the reservation read, a snapshot; a reservation or
    release by another saga in between is overwritten (a lost update)."""
    for product_id, before in sorted(done["stock_before"].items()):
        tx.execute("UPDATE products SET stock = ? WHERE product_id = ?", (before, product_id))
        noted.wrote(audit.stock(product_id), before)
    tx.execute("UPDATE reservations SET released = 1 WHERE saga_id = ?", (saga_id,))


class InventoryService(Service):
    def __init__(self, store: Store, countermeasures: Countermeasures = DEFAULT) -> None:
        super().__init__(store, countermeasures)
        commutative = self.countermeasures.commutative_updates
        self.undo_reservation: Release = release if commutative else restore_snapshot

    async def reserve_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def apply(tx: Tx) -> dict[str, Any]:
            noted = Audit()
            before = {
                item.product_id: take(tx, req.saga_id, item.product_id, item.quantity, noted)
                for item in in_lock_order(req.order.items)
            }
            lines = {i.product_id: i.quantity for i in req.order.items}
            return noted.into({"lines": lines, "stock_before": before})

        return await self._forward(req, StepName.RESERVE_INVENTORY, apply, within)

    async def release_inventory(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            noted = Audit()
            self.undo_reservation(tx, req.saga_id, done, noted)
            return noted.into({"released": done["lines"]})

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

    async def reprice(self, product_id: str, price_cents: int) -> dict[str, Any]:
        """The catalogue's owner changes a price (orders admitted before keep theirs);
        returns the audit of the change."""

        def work(tx: Tx) -> dict[str, Any]:
            noted = Audit()
            tx.execute(
                "UPDATE products SET price_cents = ? WHERE product_id = ?",
                (price_cents, product_id),
            )
            noted.wrote(audit.price(product_id), price_cents)
            return noted.into({})

        return await self.store.run(work)

    async def prices(self, product_ids: Collection[str]) -> dict[str, int]:
        """The catalogue's current prices of these products (read path)."""
        return {pid: price for pid, (_, price) in (await self.listings(product_ids)).items()}
