"""The catalogue and the customer records: the source of truth an order is checked against.

An order states its prices and its customer; the shop decides them. An order whose unit price
differs from the catalogue's, whose product the catalogue lacks, or whose customer has no
points account is invalid input: it is refused before any saga starts, with one line naming
the field and the expected value. Both runtimes check against their live stores' read path;
the CLI checks against the seed it is about to load.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.contracts import OrderRequest
from shared.errors import InvalidOrder
from shared.seed import SeedData
from shared.services import Domain


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
        """Raise InvalidOrder naming the first field the catalogue or customers contradict."""
        if order.customer_id not in self.customers:
            raise InvalidOrder(
                f"customer_id: unknown customer {order.customer_id!r};"
                " see `saga-compare catalogue` for the customers"
            )
        for index, item in enumerate(order.items):
            listing = self.products.get(item.product_id)
            if listing is None:
                raise InvalidOrder(
                    f"items[{index}].product_id: unknown product {item.product_id!r};"
                    " see `saga-compare catalogue` for the products"
                )
            if item.unit_price_cents != listing.price_cents:
                raise InvalidOrder(
                    f"items[{index}].unit_price_cents: {item.unit_price_cents} does not match"
                    f" the catalogue price {listing.price_cents} of {item.product_id}"
                )


async def admit(domain: Domain, order: OrderRequest) -> None:
    """Refuse an order the live catalogue or customer records contradict (InvalidOrder)."""
    (await Catalogue.read(domain, order)).check(order)
