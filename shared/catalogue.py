"""The catalogue and the customer records: the source of truth an order is checked against.

An order states its prices and its customer; the shop decides them. An order whose unit price
differs from the catalogue's, whose product the catalogue lacks, or whose customer has no
points account is invalid input (`Inadmissible`, with a named reason and one line naming the
field and the expected value). Both runtimes check against their live stores' read path
before they start a saga (the early, friendly error), the CLI against the seed it is about
to load; the services check again when the order reaches them (shared/admission.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import OrderRequest, Reason, ServiceName
from shared.errors import Inadmissible
from shared.seed import SeedData
from shared.services import Domain

CATALOGUE_STORES = (ServiceName.INVENTORY, ServiceName.POINTS)
"""Where the catalogue is read: inventory's products and the points service's accounts. A
process that admits orders without owning these (the choreography's orders service) opens
them read-only (``Domain.open(only=CATALOGUE_STORES, migrate=False)``)."""


@dataclass(frozen=True)
class Listing:
    """One product as the catalogue sells it."""

    name: str
    price_cents: int


@dataclass(frozen=True)
class Catalogue:
    """What the shop sells at which price, and who its customers are."""

    products: dict[str, Listing]
    customers: frozenset[str]

    @classmethod
    def from_seed(cls, seed: SeedData) -> Catalogue:
        return cls(
            products={pid: Listing(p.name, p.price_cents) for pid, p in seed.products.items()},
            customers=frozenset(seed.points),
        )

    @classmethod
    async def read(cls, domain: Domain, order: OrderRequest | None = None) -> Catalogue:
        """The live catalogue: inventory's products and the points service's accounts — only
        the order's own products and customer when an order is given (its admission reads a
        few rows, whatever the size of the catalogue)."""
        products = None if order is None else [item.product_id for item in order.items]
        customers = None if order is None else [order.customer_id]
        return cls(
            products={
                pid: Listing(name, price)
                for pid, (name, price) in (await domain.inventory.listings(products)).items()
            },
            customers=frozenset(await domain.points.balances(customers)),
        )

    def check(self, order: OrderRequest) -> None:
        """Raise Inadmissible naming the first field the catalogue or customers contradict."""
        if order.customer_id not in self.customers:
            raise Inadmissible(
                Reason.UNKNOWN_CUSTOMER,
                f"customer_id: unknown customer {order.customer_id!r};"
                " see `saga-compare catalogue` for the customers",
            )
        for index, item in enumerate(order.items):
            listing = self.products.get(item.product_id)
            if listing is None:
                raise Inadmissible(
                    Reason.UNKNOWN_PRODUCT,
                    f"items[{index}].product_id: unknown product {item.product_id!r};"
                    " see `saga-compare catalogue` for the products",
                )
            if item.unit_price_cents != listing.price_cents:
                raise Inadmissible(
                    Reason.PRICE_MISMATCH,
                    f"items[{index}].unit_price_cents: {item.unit_price_cents} does not match"
                    f" the catalogue price {listing.price_cents} of {item.product_id}",
                )


async def admit(domain: Domain, order: OrderRequest) -> None:
    """Refuse an order the live catalogue or customer records contradict (Inadmissible)."""
    (await Catalogue.read(domain, order)).check(order)
