"""The saga is declared once: a step added to a copy of the spec runs in both styles.

`notify_customer` (a small notification service defined here) goes after the shipment. Neither
variant's code knows it: the choreography derives its events, consumers and reactions from
the spec, the workflow sequences the spec it receives and its one dynamic activity runs the
step by name.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from harness.compare.faulty import Faulty, injected
from harness.compare.scenarios import ANTARCTICA, FAST, order
from shared.contracts import (
    Action,
    ActionResult,
    Phase,
    Reason,
    SagaStatus,
    StepName,
    StepRequest,
    StepResult,
    StepStatus,
)
from shared.definition import SagaDefinition
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.runtime import SagaRuntime
from shared.saga import StepSpec
from shared.seed import seed
from shared.services import ServiceDef
from shared.services.base import STEP_LOG, Service, Within
from shared.store import Migration, Tx, migrations

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOTIFY = "notify_customer"

NOTIFICATION_MIGRATIONS: tuple[Migration, ...] = (
    *STEP_LOG,
    *migrations(
        "notification",
        """
        CREATE TABLE notifications (
            saga_id TEXT PRIMARY KEY,
            customer_id TEXT NOT NULL,
            message TEXT NOT NULL
        )
        """,
    ),
)


class NotificationService(Service):
    """Tells the customer the order ships: once per saga, like every step."""

    async def notify_customer(self, req: StepRequest, within: Within | None = None) -> StepResult:
        def apply(tx: Tx) -> dict[str, Any]:
            message = f"order {req.order.order_id} is on its way"
            tx.execute(
                "INSERT INTO notifications (saga_id, customer_id, message) VALUES (?, ?, ?)",
                (req.saga_id, req.order.customer_id, message),
            )
            return {"message": message}

        return await self._forward(req, NOTIFY, apply, within)

    async def sent(self, saga_id: str) -> list[str]:
        """Who was told about this saga's order."""
        rows = await self.store.query(
            "SELECT customer_id FROM notifications WHERE saga_id = ?", (saga_id,)
        )
        return [row["customer_id"] for row in rows]


EXTENDED = SagaDefinition(
    name="orders-notified",
    version="v1",
    spec=ORDERS_V1.spec.extended(
        StepSpec(name=NOTIFY, service="notification", done="notified"),
        after=StepName.CREATE_SHIPMENT,
    ),
    services={
        **ORDERS_V1.services,
        "notification": ServiceDef(NotificationService, NOTIFICATION_MIGRATIONS),
    },
)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[("orchestration", "remote"), ("orchestration", "local"), ("choreography", None)],
    ids=lambda p: "-".join(part for part in p if part),
)
async def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Faulty[SagaRuntime]]:
    """Each style; the workflow in both activity modes (its local path reads the spec too)."""
    variant, activities = request.param
    module = importlib.import_module(f"{variant}.runtime")
    data_dir: Path = tmp_path_factory.mktemp(f"extended-{variant}")
    options = {"activities": activities} if activities else {}
    plans, hooks = injected(variant)
    async with module.open_runtime(data_dir, EXTENDED, hooks=hooks, **options) as started:
        yield Faulty(started, plans)


def notifications(runtime: Faulty[SagaRuntime]) -> NotificationService:
    service = runtime.domain.services["notification"]
    assert isinstance(service, NotificationService)
    return service


def forward(outcome_steps: list[Any]) -> dict[str, StepStatus]:
    return {s.step: s.status for s in outcome_steps if s.phase is Phase.FORWARD}


async def test_a_step_added_to_the_spec_runs_on_the_happy_path(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"notify-{uuid.uuid4().hex[:8]}"

    await runtime.start_saga(saga_id, order(saga_id, points=100), FaultPlan(), FAST)
    outcome = await runtime.wait(saga_id, 30)

    assert outcome.status is SagaStatus.COMPLETED
    assert list(forward(outcome.steps)) == list(EXTENDED.spec.forward_steps)
    assert set(forward(outcome.steps).values()) == {StepStatus.DONE}
    assert await notifications(runtime).sent(saga_id) == ["alice"]
    shipments = [s for s in await runtime.domain.shipping.shipments() if s.saga_id == saga_id]
    assert [s.status for s in shipments] == ["created"]


async def test_a_step_added_to_the_spec_is_retried_like_every_step(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"notify-retry-{uuid.uuid4().hex[:8]}"
    flaky = FaultPlan(rules=[FaultRule(step=NOTIFY, transient=2)])

    await runtime.start_saga(saga_id, order(saga_id), flaky, FAST)
    outcome = await runtime.wait(saga_id, 30)

    assert outcome.status is SagaStatus.COMPLETED
    attempts = {s.step: s.attempts for s in outcome.steps if s.phase is Phase.FORWARD}
    assert attempts[NOTIFY] == 3
    assert await notifications(runtime).sent(saga_id) == ["alice"]


async def test_a_saga_with_the_added_step_compensates_without_reaching_it(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"notify-undone-{uuid.uuid4().hex[:8]}"

    await runtime.start_saga(
        saga_id, order(saga_id, points=100, address=ANTARCTICA), FaultPlan(), FAST
    )
    outcome = await runtime.wait(saga_id, 30)

    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.SHIPMENT_FAILED,
        StepName.CREATE_SHIPMENT,
    )
    assert forward(outcome.steps)[NOTIFY] is StepStatus.PENDING
    compensations = [s.step for s in outcome.steps if s.phase is Phase.COMPENSATE]
    assert compensations == [
        StepName.CANCEL_SHIPMENT,
        StepName.RESTORE_POINTS,
        StepName.REFUND_PAYMENT,
        StepName.RELEASE_INVENTORY,
    ]
    assert await notifications(runtime).sent(saga_id) == []
    state = await runtime.domain.snapshot()
    assert state.points["alice"] == 5_000
    assert [c.refunded_cents == c.amount_cents for c in state.charges if c.saga_id == saga_id] == [
        True
    ]


async def test_a_refused_step_after_the_pivot_waits_for_an_operator(
    runtime: Faulty[SagaRuntime],
) -> None:
    await seed(runtime.domain)
    saga_id = f"notify-refused-{uuid.uuid4().hex[:8]}"
    refused = FaultPlan(rules=[FaultRule(step=NOTIFY, permanent=True)])

    await runtime.start_saga(saga_id, order(saga_id), refused, FAST)
    outcome = await runtime.wait(saga_id, 30)

    assert (outcome.status, outcome.failed_step) == (SagaStatus.NEEDS_INTERVENTION, NOTIFY)
    assert forward(outcome.steps)[StepName.COMPLETE_ORDER] is StepStatus.PENDING
    shipments = [s for s in await runtime.domain.shipping.shipments() if s.saga_id == saga_id]
    assert [s.status for s in shipments] == ["created"]


async def test_a_refused_step_after_the_pivot_retried_runs_it_and_every_step_after_it(
    runtime: Faulty[SagaRuntime],
) -> None:
    """An operator's retry starts at the failed step and goes on to the end: the customer is
    told once, then the order completes (it never ran in the saga's own run)."""
    await seed(runtime.domain)
    saga_id = f"notify-retried-{uuid.uuid4().hex[:8]}"
    refused = FaultPlan(rules=[FaultRule(step=NOTIFY, permanent=True)])
    await runtime.start_saga(saga_id, order(saga_id), refused, FAST)
    assert (await runtime.wait(saga_id, 30)).failed_step == NOTIFY

    action = await runtime.retry_step(saga_id, "ops-anna")

    assert (action.action, action.result, action.round) == (
        Action.RETRY_STEP,
        ActionResult.COMPLETED,
        1,
    )
    outcome = await runtime.wait(saga_id, 30)
    assert (outcome.status, outcome.failed_step) == (SagaStatus.COMPLETED, None)
    steps = forward(outcome.steps)
    assert (steps[NOTIFY], steps[StepName.COMPLETE_ORDER]) == (StepStatus.DONE, StepStatus.DONE)
    assert await notifications(runtime).sent(saga_id) == ["alice"]
    record = next(r for r in await runtime.domain.orders.records() if r.saga_id == saga_id)
    assert record.status is SagaStatus.COMPLETED
