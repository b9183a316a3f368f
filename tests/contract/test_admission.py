"""An order the live catalogue or customer records contradict never starts a saga."""

from __future__ import annotations

import uuid

import pytest

from harness.compare.faulty import Faulty
from harness.compare.scenarios import FAST, order
from shared.contracts import LineItem, OrderRequest
from shared.errors import InvalidOrder
from shared.faults import FaultPlan
from shared.runtime import SagaRuntime, UnknownSaga
from shared.seed import DEFAULT_SEED, Product, seed

pytestmark = pytest.mark.asyncio(loop_scope="module")

REPRICED = DEFAULT_SEED.model_copy(
    update={
        "products": {
            **DEFAULT_SEED.products,
            "widget": Product(name="Widget", price_cents=2_500, stock=100),
        },
        "points": {**DEFAULT_SEED.points, "dave": 0},
    }
)
"""A live catalogue unlike the default seed: checks must read the stores, not the seed."""


def at_price(base: OrderRequest, cents: int) -> OrderRequest:
    return base.model_copy(
        update={"items": [LineItem(product_id="widget", quantity=1, unit_price_cents=cents)]}
    )


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda oid: at_price(order(oid), 1),
            "items[0].unit_price_cents: 1 does not match the catalogue price 2500 of widget",
        ),
        (
            lambda oid: at_price(order(oid), 0),
            "items[0].unit_price_cents: 0 does not match the catalogue price 2500 of widget",
        ),
        (
            lambda oid: at_price(order(oid), 1_999),
            "items[0].unit_price_cents: 1999 does not match the catalogue price 2500 of widget",
        ),
        (
            lambda oid: at_price(order(oid, customer="mallory", points=0), 2_500),
            "customer_id: unknown customer 'mallory'",
        ),
        (
            lambda oid: at_price(order(oid, customer="mallory", points=10), 2_500),
            "customer_id: unknown customer 'mallory'",
        ),
    ],
    ids=["one-cent", "free", "default-seed-price", "unknown-customer", "unknown-with-points"],
)
async def test_an_order_contradicting_the_live_records_is_refused_and_changes_nothing(
    runtime: Faulty[SagaRuntime], make: object, message: str
) -> None:
    await seed(runtime.domain, REPRICED)
    before = await runtime.domain.snapshot()
    saga_id = f"refused-{uuid.uuid4().hex[:8]}"

    with pytest.raises(InvalidOrder) as refused:
        await runtime.start_saga(saga_id, make(saga_id), FaultPlan(), FAST)  # type: ignore[operator]

    assert str(refused.value).startswith(message)
    assert await runtime.domain.snapshot() == before
    with pytest.raises(UnknownSaga):
        await runtime.describe(saga_id)


async def test_an_order_at_the_live_price_from_a_known_customer_completes(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain, REPRICED)
    saga_id = f"priced-{uuid.uuid4().hex[:8]}"

    await runtime.start_saga(
        saga_id, at_price(order(saga_id, customer="dave"), 2_500), FaultPlan(), FAST
    )
    outcome = await runtime.wait(saga_id, 30)

    assert outcome.status.value == "COMPLETED"
    charges = [c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id]
    assert [c.amount_cents for c in charges] == [2_500]
