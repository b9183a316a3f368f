"""The known starting state (catalogue, customers, balances) used by tests and the demo."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.services import Domain


class Product(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    price_cents: int = Field(ge=0)
    stock: int = Field(ge=0)


class SeedData(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    products: dict[str, Product]
    points: dict[str, int]


DEFAULT_SEED = SeedData(
    products={
        "widget": Product(name="Widget", price_cents=1_999, stock=100),
        "gadget": Product(name="Gadget", price_cents=4_950, stock=50),
        "gizmo": Product(name="Gizmo", price_cents=12_500, stock=20),
        "last-few": Product(name="Limited edition", price_cents=2_500, stock=5),
        "sold-out": Product(name="Sold-out item", price_cents=999, stock=0),
    },
    points={"alice": 5_000, "bob": 100, "carol": 0},
)


async def seed(domain: Domain, data: SeedData = DEFAULT_SEED) -> None:
    """Reset every store to ``data``: catalogue and stock, point balances, nothing else."""
    await domain.inventory.seed(
        {k: (p.name, p.price_cents, p.stock) for k, p in data.products.items()}
    )
    await domain.points.seed(data.points)
    await domain.payment.reset()
    await domain.shipping.reset()
    await domain.orders.reset()
    for name, part in domain.definition.state_parts.items():
        await part.open_accounts(domain.services[name], list(data.points))
