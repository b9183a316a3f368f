"""Orders, policies and probes shared by the orchestration integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from harness.compare.faulty import Faulty
from orchestration.runtime import OrchestrationRuntime
from shared.contracts import (
    LineItem,
    OrderRequest,
    Phase,
    Reason,
    SagaOutcome,
    SagaPolicy,
    SagaStatus,
    ShippingAddress,
    StepId,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.services import Domain

FAST = SagaPolicy(
    deadline_s=20.0,
    attempt_timeout_s=1.0,
    initial_backoff_s=0.05,
    backoff_factor=2.0,
    max_backoff_s=0.2,
    compensation_attempts=3,
)
WIDGET_PRICE = 1_999
SEEDED_WIDGETS = 100
SEEDED_POINTS = {"alice": 5_000, "bob": 100, "carol": 0}


def new_id(prefix: str) -> str:
    """A saga id unique on the shared server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def order(
    order_id: str,
    *,
    customer: str = "alice",
    widgets: int = 2,
    points: int = 100,
    card: str = "card-4242",
    country: str = "US",
) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        customer_id=customer,
        items=[LineItem(product_id="widget", quantity=widgets, unit_price_cents=WIDGET_PRICE)],
        payment_method=card,
        points_to_use=points,
        shipping_address=ShippingAddress(
            name="Alice", street="1 Main St", city="Springfield", postal_code="1", country=country
        ),
    )


def statuses(outcome: SagaOutcome, phase: Phase) -> dict[StepId, StepStatus]:
    return {s.step: s.status for s in outcome.steps if s.phase is phase}


def attempts(outcome: SagaOutcome, phase: Phase) -> dict[StepId, int]:
    return {s.step: s.attempts for s in outcome.steps if s.phase is phase}


def compensation_order(outcome: SagaOutcome) -> list[StepId]:
    return [s.step for s in outcome.steps if s.phase is Phase.COMPENSATE]


async def wait_running(
    runtime: OrchestrationRuntime | Faulty[OrchestrationRuntime],
    saga_id: str,
    step: StepName,
    timeout_s: float = 10.0,
) -> None:
    """Return once the saga reports ``step`` in flight."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcome = await runtime.describe(saga_id)
        if statuses(outcome, ORDERS_V1.spec.phase_of(step)).get(step) is StepStatus.RUNNING:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{step} never ran in saga {saga_id}")


@dataclass(frozen=True)
class SagaEffects:
    """What one saga left in every service, plus the shared stock and points."""

    widgets_in_stock: int
    charged_cents: int | None
    refunded_cents: int | None
    points: dict[str, int]
    shipment: str | None
    order: tuple[SagaStatus, Reason | str | None] | None


async def effects(domain: Domain, saga_id: str) -> SagaEffects:
    state = await domain.snapshot()
    charge = next((c for c in state.charges if c.saga_id == saga_id), None)
    shipment = next((s.status for s in state.shipments if s.saga_id == saga_id), None)
    record = next((r for r in state.orders if r.saga_id == saga_id), None)
    return SagaEffects(
        widgets_in_stock=state.stock["widget"],
        charged_cents=charge.amount_cents if charge else None,
        refunded_cents=charge.refunded_cents if charge else None,
        points=state.points,
        shipment=shipment,
        order=(record.status, record.reason) if record else None,
    )


def untouched(*, charged: bool, shipped: bool, reason: Reason) -> SagaEffects:
    """The effects of a fully compensated saga that charged and shipped (or not)."""
    total = 2 * WIDGET_PRICE
    return SagaEffects(
        widgets_in_stock=SEEDED_WIDGETS,
        charged_cents=total if charged else None,
        refunded_cents=total if charged else None,
        points=SEEDED_POINTS,
        shipment="cancelled" if shipped else None,
        order=(SagaStatus.COMPENSATED, reason),
    )
