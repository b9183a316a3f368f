"""An order the live catalogue or customer records contradict never does anything.

The client's own check (`start_saga`) refuses it before a saga starts: the early, friendly
error. The services check again whoever sent it: an order that skipped the client's check
(the front door's place command published as is, the workflow started with a forged input)
reaches the orders service's desk (choreography) or the workflow's first activity
(orchestration), and its saga ends REJECTED with a named reason, nothing reserved, charged,
deducted or shipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from harness.compare.faulty import Faulty
from harness.compare.invariants import check_invariants
from harness.compare.scenarios import FAST, order
from orchestration import saga_client
from orchestration.messages import SagaInput
from shared.contracts import (
    LineItem,
    OrderRequest,
    Reason,
    SagaPolicy,
    SagaStatus,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.errors import Inadmissible, InvalidOrder
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


async def test_a_policy_beyond_the_limits_is_refused_before_anything_starts(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"endless-{uuid.uuid4().hex[:8]}"
    endless = FAST.model_copy(update={"deadline_s": 1e9})

    with pytest.raises(Inadmissible) as refused:
        await runtime.start_saga(saga_id, order(saga_id), FaultPlan(), endless)

    assert refused.value.reason is Reason.POLICY_OUT_OF_BOUNDS
    assert str(refused.value) == (
        "policy.deadline_s: 1e+09 is beyond this deployment's limit 600 (SAGA_LIMIT_DEADLINE_S)"
    )
    with pytest.raises(UnknownSaga):
        await runtime.describe(saga_id)


# -- the services' own check ------------------------------------------------------------------


Forgery = Callable[[str], tuple[OrderRequest, SagaPolicy]]


def _priced(order_id: str, cents: int, product: str = "widget") -> OrderRequest:
    return order(order_id).model_copy(
        update={"items": [LineItem(product_id=product, quantity=2, unit_price_cents=cents)]}
    )


FORGERIES: dict[str, tuple[Forgery, Reason]] = {
    "one-cent": (lambda oid: (_priced(oid, 1), FAST), Reason.PRICE_MISMATCH),
    "free-item": (lambda oid: (_priced(oid, 0), FAST), Reason.PRICE_MISMATCH),
    "unknown-product": (
        lambda oid: (_priced(oid, 100, product="diamond"), FAST),
        Reason.UNKNOWN_PRODUCT,
    ),
    "unknown-customer": (
        lambda oid: (order(oid, customer="mallory", points=0), FAST),
        Reason.UNKNOWN_CUSTOMER,
    ),
    "endless-deadline": (
        lambda oid: (order(oid), FAST.model_copy(update={"deadline_s": 1e9})),
        Reason.POLICY_OUT_OF_BOUNDS,
    ),
    "endless-retries": (
        lambda oid: (order(oid), FAST.model_copy(update={"compensation_attempts": 10**6})),
        Reason.POLICY_OUT_OF_BOUNDS,
    ),
}


async def start_unchecked(
    runtime: SagaRuntime, saga_id: str, order: OrderRequest, policy: SagaPolicy
) -> None:
    """Start a saga as a forged message would: past the client's own check."""
    from choreography.runtime import ChoreographyRuntime
    from orchestration.runtime import OrchestrationRuntime

    if isinstance(runtime, ChoreographyRuntime):
        await runtime.front.place(saga_id, order, policy)
        await runtime.front.until_placed(saga_id, 30)
        return
    assert isinstance(runtime, OrchestrationRuntime)
    forged = SagaInput(
        saga_id=saga_id,
        order=order,
        policy=policy,
        saga=runtime.domain.saga,
        definition=runtime.domain.definition.ref,
        activities=runtime.activities,
    )
    await saga_client.start(runtime.client, runtime.task_queue, forged)


@pytest.mark.parametrize("forgery", list(FORGERIES))
async def test_an_order_that_skipped_the_clients_check_ends_rejected_with_nothing_done(
    runtime: Faulty[SagaRuntime], forgery: str
) -> None:
    await seed(runtime.domain)
    before = await runtime.domain.snapshot()
    saga_id = f"forged-{uuid.uuid4().hex[:8]}"
    make, reason = FORGERIES[forgery]
    forged, policy = make(saga_id)

    await start_unchecked(runtime.runtime, saga_id, forged, policy)
    outcome = await runtime.wait(saga_id, 30)

    assert (outcome.status, outcome.reason) == (SagaStatus.REJECTED, reason)
    assert {s.status for s in outcome.steps} <= {StepStatus.PENDING, StepStatus.SKIPPED}
    after = await runtime.domain.snapshot()
    (record,) = [r for r in after.orders if r.saga_id == saga_id]
    assert (record.status, record.reason) == (SagaStatus.REJECTED, reason)
    unchanged = {"orders"}
    assert after.model_dump(exclude=unchanged) == before.model_dump(exclude=unchanged)
    assert (await runtime.describe(saga_id)).status is SagaStatus.REJECTED
    mine = after.model_copy(update={"orders": [record]})
    assert all(check_invariants(ORDERS_V1, DEFAULT_SEED, mine, [(forged, outcome)]).values())


async def test_a_rejected_order_keeps_its_rejection_when_placed_again(
    runtime: Faulty[SagaRuntime],
) -> None:
    """A redelivered place (the same saga id) after the catalogue changed does not revive it."""
    await seed(runtime.domain)
    saga_id = f"forged-{uuid.uuid4().hex[:8]}"
    product = f"gem-{saga_id}"
    forged = _priced(saga_id, 100, product=product)
    await start_unchecked(runtime.runtime, saga_id, forged, FAST)
    first = await runtime.wait(saga_id, 30)
    await runtime.domain.inventory.stock_up({product: ("Gem", 100, 10)})  # now it would pass

    await start_unchecked(runtime.runtime, saga_id, forged, FAST)
    again = await runtime.wait(saga_id, 30)

    assert (first.status, first.reason) == (SagaStatus.REJECTED, Reason.UNKNOWN_PRODUCT)
    assert (again.status, again.reason) == (SagaStatus.REJECTED, Reason.UNKNOWN_PRODUCT)
    assert (await runtime.domain.inventory.stock())[product] == 10
    assert [c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id] == []
