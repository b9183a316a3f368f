"""Payment: a card-gateway simulator with charges and refunds, one charge per saga at most.

By value (`Countermeasures.by_value`, on by default): the charge is the order's total, the
prices admitted with the order, carried by the saga. Off, the charge looks the prices up in the
catalogue when it runs: a price changed since the order was admitted makes the charge and the
order disagree (a fuzzy read). Reread value (`Countermeasures.reread_value`, off by default):
the charge re-reads the catalogue first and refuses with ``price_changed`` when a price moved.
Both read the catalogue through the inventory service's read path, as an order's admission does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from typing import Any

from shared.contracts import Charge, OrderRequest, Reason, StepName, StepRequest, StepResult
from shared.countermeasures import DEFAULT, Countermeasures
from shared.errors import BusinessFailure
from shared.services import audit
from shared.services.audit import Audit
from shared.services.base import STEP_LOG, Service, Within, clear
from shared.store import Migration, Store, Tx, migrations

DECLINED_SUFFIX = "0002"
"""Like the gateways' test cards: a method ending in 0002 is always declined."""
PRICE_CHANGED = "price_changed"
"""Why a charge is refused when the catalogue's price moved since admission (reread value)."""

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

Prices = Callable[[Collection[str]], Awaitable[dict[str, int]]]
"""The catalogue's current prices of some products (the inventory service's read path)."""
Amount = Callable[[OrderRequest, dict[str, int]], int]
"""What to charge for an order, given the catalogue's prices read for it (maybe none)."""
Check = Callable[[OrderRequest, dict[str, int], Audit], None]
"""What to do before charging with the prices read: nothing, or refuse (with the audit)."""


def by_value(order: OrderRequest, catalogue: dict[str, int]) -> int:
    """By value (countermeasure): the total of the prices the order was admitted with."""
    return order.total_cents


def by_reference(order: OrderRequest, catalogue: dict[str, int]) -> int:
    """Naive: the catalogue's prices as they are now, whatever the order was admitted with."""
    return sum(item.quantity * catalogue[item.product_id] for item in order.items)


def reread(order: OrderRequest, catalogue: dict[str, int], noted: Audit) -> None:
    """Reread value (countermeasure): refuse when a price moved since the order was admitted."""
    for item in order.items:
        now = catalogue[item.product_id]
        if now != item.unit_price_cents:
            raise BusinessFailure(
                StepName.CHARGE_PAYMENT,
                PRICE_CHANGED,
                f"the price of {item.product_id} is {now} now, not {item.unit_price_cents}",
                noted.into({}),
            )


def trust(order: OrderRequest, catalogue: dict[str, int], noted: Audit) -> None:
    """Naive: the order's prices are taken as they are."""


class PaymentService(Service):
    def __init__(self, store: Store, countermeasures: Countermeasures = DEFAULT) -> None:
        super().__init__(store, countermeasures)
        self.amount: Amount = by_value if countermeasures.by_value else by_reference
        self.check: Check = reread if countermeasures.reread_value else trust
        self.prices: Prices | None = None
        """Set by the Domain: the catalogue's read path."""

    @property
    def reads_catalogue(self) -> bool:
        return not self.countermeasures.by_value or self.countermeasures.reread_value

    @property
    def reads_from(self) -> tuple[str, ...]:
        return ("inventory",) if self.reads_catalogue else ()

    async def charge_payment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        order = req.order
        catalogue = await self._catalogue(order) if self.reads_catalogue else {}

        def apply(tx: Tx) -> dict[str, Any]:
            noted = Audit()
            for product_id, price in sorted(catalogue.items()):
                noted.read(audit.price(product_id), price)
            self.check(order, catalogue, noted)
            if order.payment_method.endswith(DECLINED_SUFFIX):
                raise BusinessFailure(
                    StepName.CHARGE_PAYMENT,
                    Reason.PAYMENT_DECLINED,
                    f"card {order.payment_method} declined",
                    noted.into({}),
                )
            amount = self.amount(order, catalogue)
            # saga_id is the primary key: a second charge for one order cannot exist.
            tx.execute(
                "INSERT INTO charges (saga_id, customer_id, method, amount_cents)"
                " VALUES (?, ?, ?, ?)",
                (req.saga_id, order.customer_id, order.payment_method, amount),
            )
            noted.wrote(audit.charge(req.saga_id), amount)
            return noted.into(self.charged(amount))

        return await self._forward(req, StepName.CHARGE_PAYMENT, apply, within)

    async def _catalogue(self, order: OrderRequest) -> dict[str, int]:
        if self.prices is None:
            raise RuntimeError("the payment service reads prices, but no catalogue was wired")
        return await self.prices([item.product_id for item in order.items])

    async def refund_payment(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def undo(tx: Tx, done: dict[str, Any]) -> dict[str, Any]:
            cents = self.charged_cents(done)
            tx.execute(
                "UPDATE charges SET refunded_cents = amount_cents WHERE saga_id = ?",
                (req.saga_id,),
            )
            noted = Audit()
            noted.wrote(audit.charge(req.saga_id), 0, read=cents)
            return noted.into({"refunded_cents": cents})

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
