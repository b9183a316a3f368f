"""Activities map the shared failure taxonomy onto Temporal's retry rules (ActivityEnvironment)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from orchestration.activities import SagaActivities
from orchestration.messages import CloseCall, PlaceCall, StepCall, StepDone
from shared import faults
from shared.contracts import (
    LineItem,
    OrderRequest,
    Reason,
    SagaStatus,
    ShippingAddress,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import CrashPoint, FaultInjector, FaultPlan, FaultRule, MemoryPlans
from shared.seed import seed
from shared.services import Domain
from shared.store import sqlite_stores

SAGA_ID = "saga-unit-1"


def order(card: str = "card-4242") -> OrderRequest:
    return OrderRequest(
        order_id="o-1",
        customer_id="alice",
        items=[LineItem(product_id="widget", quantity=1, unit_price_cents=1_999)],
        payment_method=card,
        shipping_address=ShippingAddress(
            name="A", street="1 Main St", city="Springfield", postal_code="1", country="US"
        ),
    )


class Died(BaseException):
    """What the injector's process death does in these tests: it ends the attempt here."""


async def die() -> None:
    raise Died


@pytest.fixture
def plans() -> MemoryPlans:
    """Where a test installs the saga's faults (the activities' injector reads them)."""
    return MemoryPlans()


@pytest_asyncio.fixture
async def activities(tmp_path: Path, plans: MemoryPlans) -> AsyncIterator[SagaActivities]:
    domain = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
    await seed(domain)
    injector = FaultInjector.for_variant("orchestration", plans, die=die)
    try:
        yield SagaActivities(domain, faults.hooks(injector).step)
    finally:
        await domain.close()


def engine(attempt: int = 1, activity_type: str = "test") -> ActivityEnvironment:
    """An activity context whose workflow id is the saga id, on the given attempt."""
    env = ActivityEnvironment()
    env.payload_converter = pydantic_data_converter.payload_converter
    env.info = dataclasses.replace(
        env.info, workflow_id=SAGA_ID, attempt=attempt, activity_type=activity_type
    )
    return env


async def run_step(
    activities: SagaActivities, step: str, call: StepCall, attempt: int = 1
) -> StepDone:
    """The dynamic activity as the worker calls it: by the step's name, with a raw payload."""
    raw = RawValue(pydantic_data_converter.payload_converter.to_payload(call))
    done: StepDone = await engine(attempt, step).run(activities.step, [raw])
    return done


async def test_any_step_of_the_spec_runs_through_the_one_dynamic_activity(
    activities: SagaActivities,
) -> None:
    done = await run_step(activities, StepName.RESERVE_INVENTORY, StepCall(order=order()))
    undone = await run_step(activities, StepName.RELEASE_INVENTORY, StepCall(order=order()))

    assert (done.result.step, done.result.status) == (StepName.RESERVE_INVENTORY, StepStatus.DONE)
    assert (undone.result.step, undone.result.status) == (
        StepName.RELEASE_INVENTORY,
        StepStatus.DONE,
    )


async def test_a_name_the_spec_does_not_declare_is_refused_for_good(
    activities: SagaActivities,
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await run_step(activities, "close", StepCall(order=order()))

    assert raised.value.non_retryable
    assert "no step 'close'" in str(raised.value)


async def test_the_workflow_id_is_the_idempotency_key_and_the_attempt_comes_from_the_engine(
    activities: SagaActivities,
) -> None:
    call = StepCall(order=order())

    first = await run_step(activities, StepName.CHARGE_PAYMENT, call, attempt=3)
    again = await run_step(activities, StepName.CHARGE_PAYMENT, call, attempt=4)

    assert (first.attempt, first.result.status, first.result.saga_id) == (
        3,
        StepStatus.DONE,
        SAGA_ID,
    )
    assert again.result.replayed
    assert len(await activities.domain.payment.charges()) == 1


async def test_a_declined_card_is_a_non_retryable_business_failure_carrying_its_reason(
    activities: SagaActivities,
) -> None:
    with pytest.raises(ApplicationError) as raised:
        await run_step(
            activities, StepName.CHARGE_PAYMENT, StepCall(order=order("card-0002")), attempt=2
        )

    error = raised.value
    assert (error.type, error.non_retryable) == ("BusinessFailure", True)
    detail = error.details[0]
    assert (detail.reason, detail.attempt) == (Reason.PAYMENT_DECLINED, 2)


async def test_a_transient_failure_from_the_step_middleware_stays_retryable(
    activities: SagaActivities, plans: MemoryPlans
) -> None:
    plans.install(SAGA_ID, FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, transient=1)]))

    with pytest.raises(ApplicationError) as raised:
        await run_step(activities, StepName.CHARGE_PAYMENT, StepCall(order=order()))

    assert (raised.value.type, raised.value.non_retryable) == ("TransientFailure", False)


async def test_a_crash_point_after_commit_dies_in_the_step_middleware_after_the_charge(
    activities: SagaActivities, plans: MemoryPlans
) -> None:
    crash = FaultRule(step=StepName.CHARGE_PAYMENT, crash=CrashPoint.AFTER_COMMIT)
    plans.install(SAGA_ID, FaultPlan(rules=[crash]))

    with pytest.raises(Died):
        await run_step(activities, StepName.CHARGE_PAYMENT, StepCall(order=order()))

    assert len(await activities.domain.payment.charges()) == 1


async def test_place_and_close_record_the_order_once_each(activities: SagaActivities) -> None:
    await engine().run(activities.place_order, PlaceCall(order=order()))
    await engine(attempt=2).run(activities.place_order, PlaceCall(order=order()))
    placed = await activities.domain.orders.records()
    closing = CloseCall(status=SagaStatus.COMPENSATED, reason=Reason.TIMED_OUT)
    await engine().run(activities.close_order, closing)
    await engine(attempt=2).run(activities.close_order, closing)

    assert [(r.saga_id, r.status) for r in placed] == [(SAGA_ID, SagaStatus.RUNNING)]
    (record,) = await activities.domain.orders.records()
    assert (record.status, record.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
