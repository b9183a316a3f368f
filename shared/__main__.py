"""`python -m shared`: the domain's smoke check, one order through every step on fresh stores."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from shared.contracts import LineItem, OrderRequest, ShippingAddress, StepRequest
from shared.definitions import ORDERS_V1
from shared.seed import seed
from shared.services import Domain
from shared.steps import run_step
from shared.store import sqlite_stores


async def smoke(data_dir: Path) -> None:
    domain = await Domain(sqlite_stores(data_dir), ORDERS_V1).open()
    try:
        await seed(domain)
        order = OrderRequest(
            order_id="smoke-1",
            customer_id="alice",
            items=[LineItem(product_id="widget", quantity=2, unit_price_cents=1_999)],
            payment_method="card-4242",
            points_to_use=100,
            shipping_address=ShippingAddress(
                name="Alice",
                street="1 Main St",
                city="Springfield",
                postal_code="12345",
                country="US",
            ),
        )
        await domain.orders.place(order.order_id, order)
        for step in ORDERS_V1.spec.forward_steps:
            result = await run_step(
                domain, step, StepRequest(saga_id=order.order_id, order=order), variant="smoke"
            )
            print(f"{step:<18} {result.status.value}")
        print((await domain.snapshot()).model_dump_json(indent=2))
    finally:
        await domain.close()


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(smoke(Path(folder)))
