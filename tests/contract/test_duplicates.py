"""An order is placed once: a second saga for the same order id is refused in both styles.

The orders store's uniqueness of ``order_id`` decides: the choreography's start refuses the
placement in the transaction that would have placed it; the orchestration's start is an
update-with-start whose ``place`` update reports the refusal synchronously. Either way the
second start raises DuplicateOrder, changes nothing, and leaves no saga running.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from harness.compare.faulty import Faulty
from harness.compare.scenarios import FAST, order
from shared.contracts import SagaStatus
from shared.errors import DuplicateOrder
from shared.faults import FaultPlan, FaultRule
from shared.runtime import SagaRuntime, UnknownSaga
from shared.seed import seed

pytestmark = pytest.mark.asyncio(loop_scope="module")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_second_saga_for_a_placed_order_is_refused_and_changes_nothing(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    order_id, first, second = new_id("dup"), new_id("first"), new_id("second")
    await runtime.start_saga(first, order(order_id, points=100), FaultPlan(), FAST)
    assert (await runtime.wait(first, 30)).status is SagaStatus.COMPLETED
    before = await runtime.domain.snapshot()

    with pytest.raises(DuplicateOrder) as refused:
        await runtime.start_saga(second, order(order_id, points=100), FaultPlan(), FAST)

    assert str(refused.value) == f"order_id: order {order_id!r} is placed already (saga {first})"
    assert await runtime.domain.snapshot() == before
    with pytest.raises(UnknownSaga):
        await runtime.describe(second)
    assert (await runtime.describe(first)).status is SagaStatus.COMPLETED


async def test_an_order_placed_by_a_saga_still_running_is_refused_too(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    order_id, first, second = new_id("dup-live"), new_id("first"), new_id("second")
    slow = FaultPlan(rules=[FaultRule(step="charge_payment", delay_ms=500)])
    await runtime.start_saga(first, order(order_id), slow, FAST)

    with pytest.raises(DuplicateOrder):
        await runtime.start_saga(second, order(order_id), FaultPlan(), FAST)

    assert (await runtime.wait(first, 30)).status is SagaStatus.COMPLETED
    charges = [c for c in (await runtime.domain.snapshot()).charges]
    assert [c.saga_id for c in charges] == [first]


async def test_two_sagas_racing_for_one_order_id_charge_and_ship_it_once(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    order_id = new_id("dup-race")
    racers = [new_id("racer") for _ in range(2)]

    starts = await asyncio.gather(
        *(runtime.start_saga(s, order(order_id), FaultPlan(), FAST) for s in racers),
        return_exceptions=True,
    )

    refused = [s for s, r in zip(racers, starts, strict=True) if isinstance(r, DuplicateOrder)]
    placed = [s for s, r in zip(racers, starts, strict=True) if r is None]
    assert (len(placed), len(refused)) == (1, 1), starts
    assert (await runtime.wait(placed[0], 30)).status is SagaStatus.COMPLETED
    state = await runtime.domain.snapshot()
    assert [c.saga_id for c in state.charges] == placed
    assert [s.saga_id for s in state.shipments] == placed


async def test_starting_the_same_saga_again_is_a_no_op(runtime: Faulty[SagaRuntime]) -> None:
    await seed(runtime.domain)
    saga_id = new_id("again")
    await runtime.start_saga(saga_id, order(saga_id), FaultPlan(), FAST)

    await runtime.start_saga(saga_id, order(saga_id), FaultPlan(), FAST)

    assert (await runtime.wait(saga_id, 30)).status is SagaStatus.COMPLETED
    assert len((await runtime.domain.snapshot()).charges) == 1
