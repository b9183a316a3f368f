"""Record the saga events the upcasting test feeds to today's consumers: release 1's events.

    cp tests/integration/choreography/record_events.py \\
        <a checkout of release 1>/tests/integration/choreography/
    cd <a checkout of release 1> && PYTHONDONTWRITEBYTECODE=1 .venv/bin/python \\
        -m tests.integration.choreography.record_events <folder to write>

Starts an embedded nats-server and the choreography runtime of the checkout it runs in
(saga definition v1), runs each saga below, and writes every message published on ``saga.>``
(subject and body exactly as sent, in the order the broker saw them) to
``<folder>/<name>.jsonl``. It uses only what release 1 already had, so it runs there; the
committed fixtures under ``events/v1/`` were recorded that way (docs/versioning.md).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nats.aio.msg import Msg

from choreography.runtime import open_runtime
from harness.compare.faulty import Faulty, injected
from shared.contracts import (
    LineItem,
    OrderRequest,
    SagaPolicy,
    ShippingAddress,
    StepName,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed

AQ = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="AQ")
"""Shipments there fail (the seed's rule): a saga that compensates from the pivot."""
POLICY = SagaPolicy(deadline_s=30, attempt_timeout_s=2, initial_backoff_s=0.05, max_backoff_s=0.2)


def order(order_id: str, **changes: object) -> OrderRequest:
    fields: dict[str, object] = {
        "order_id": order_id,
        "customer_id": "alice",
        "items": [LineItem(product_id="widget", quantity=2, unit_price_cents=1999)],
        "payment_method": "card-4242",
        "points_to_use": 100,
        "shipping_address": ShippingAddress(
            name="A", street="1 Main St", city="X", postal_code="1", country="US"
        ),
    }
    fields.update(changes)
    return OrderRequest.model_validate(fields)


@dataclass(frozen=True)
class Recording:
    name: str
    order: OrderRequest
    faults: FaultPlan = field(default_factory=FaultPlan)
    cancel_during: StepName | None = None
    operator: str | None = None


RECORDINGS = (
    Recording("happy_path", order("v1-happy")),
    Recording("points_skipped", order("v1-no-points", customer_id="bob", points_to_use=0)),
    Recording("payment_declined", order("v1-declined", payment_method="card-0002")),
    Recording("shipment_failed", order("v1-shipment-failed", shipping_address=AQ)),
    Recording(
        "cancelled_during_payment",
        order("v1-cancelled"),
        FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=500)]),
        cancel_during=StepName.CHARGE_PAYMENT,
    ),
    Recording(
        "refund_retried_by_an_operator",
        order("v1-operator", shipping_address=AQ),
        FaultPlan(rules=[FaultRule(step=StepName.REFUND_PAYMENT, transient=1_000)]),
        operator="ops",
    ),
)


async def _record_one(runtime: Faulty, recording: Recording, seen: list[Msg]) -> list[Msg]:  # type: ignore[type-arg]
    saga_id = recording.order.order_id
    first = len(seen)
    await runtime.start_saga(saga_id, recording.order, recording.faults, POLICY)
    if recording.cancel_during is not None:
        while True:
            outcome = await runtime.describe(saga_id)
            step = recording.cancel_during
            if any(s.step == step and s.status is StepStatus.RUNNING for s in outcome.steps):
                break
            await asyncio.sleep(0.02)
        await runtime.cancel_saga(saga_id)
    await runtime.wait(saga_id, 60)
    if recording.operator is not None:
        await runtime.retry_compensation(saga_id, recording.operator)
        await runtime.wait(saga_id, 60)
    await asyncio.sleep(1.0)  # late hand-backs and retries still in flight reach the recorder
    return [m for m in seen[first:] if m.subject.rsplit(".", 1)[-1] == saga_id]


async def record(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as data:
        plans, hooks = injected("choreography")
        async with open_runtime(Path(data), ORDERS_V1, hooks=hooks) as raw:
            await seed(raw.domain)
            seen: list[Msg] = []

            async def keep(msg: Msg) -> None:
                seen.append(msg)

            await raw.bus.nc.subscribe("saga.>", cb=keep)
            runtime = Faulty(raw, plans)
            for recording in RECORDINGS:
                messages = await _record_one(runtime, recording, seen)
                path = directory / f"{recording.name}.jsonl"
                lines = [
                    json.dumps({"subject": m.subject, "body": m.data.decode()}) for m in messages
                ]
                path.write_text("\n".join(lines) + "\n", encoding="utf-8")
                written.append(path)
    return written


if __name__ == "__main__":
    for path in asyncio.run(record(Path(sys.argv[1]))):
        print(f"wrote {path}")
