"""The services admit an order themselves: a start that skips the client's check still ends
REJECTED, with a named reason, and nothing reserved, charged, deducted or shipped.

The client-side check (`admit` in each runtime's ``start_saga``) is only the early, friendly
error. Here the order reaches the orders service's desk (choreography) or the workflow's first
activity (orchestration) the way a hand-made message would: the front door's place command
published as is, the workflow started with the forged input.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from harness.compare.faulty import Faulty
from harness.compare.scenarios import FAST, PRICES, order
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
from shared.runtime import SagaRuntime
from shared.seed import seed

pytestmark = pytest.mark.asyncio(loop_scope="module")

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


async def test_a_rejected_order_keeps_its_rejection_when_placed_again(
    runtime: Faulty[SagaRuntime],
) -> None:
    """A redelivered place (the same saga id) after the catalogue changed does not revive it."""
    await seed(runtime.domain)
    saga_id = f"forged-{uuid.uuid4().hex[:8]}"
    forged = _priced(saga_id, PRICES["widget"] - 1)
    await start_unchecked(runtime.runtime, saga_id, forged, FAST)
    first = await runtime.wait(saga_id, 30)

    await start_unchecked(runtime.runtime, saga_id, forged, FAST)
    again = await runtime.wait(saga_id, 30)

    assert first.status is again.status is SagaStatus.REJECTED
    assert [c for c in (await runtime.domain.snapshot()).charges if c.saga_id == saga_id] == []
