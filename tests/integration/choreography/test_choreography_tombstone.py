"""Compensation before forward: the compensation tombstones, the late forward is refused."""

from __future__ import annotations

import time

import pytest

from choreography import outbox
from choreography.events import Event, placed, subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import ServiceName, StepName, StepStatus
from shared.definitions import ORDERS_V1
from tests.integration.choreography.choreography_support import (
    QUICK,
    eventually,
    make_order,
    saga_id,
    stream_count,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _publish(runtime: Faulty[ChoreographyRuntime], *events: Event) -> None:
    """Publish hand-made events the way a participant does (outbox row, then the bus)."""
    rows = await runtime.domain.orders.store.run(
        lambda tx: [outbox.add(tx, event) for event in events]
    )
    await runtime.runtime.bus.publish([row for row in rows if row is not None])


async def test_refund_that_arrives_before_the_charge_tombstones_it_and_the_charge_is_refused(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("early")
    start = placed(sid, make_order(sid, points=100), QUICK, time.time(), ORDERS_V1.ref)
    trail = (StepName.RESERVE_INVENTORY, StepName.CHARGE_PAYMENT, StepName.DEDUCT_POINTS)
    # Points hands the chain back to payment before payment ever saw its trigger.
    restored = start.follow("points.restored", trail=trail, step=StepName.RESTORE_POINTS)
    reserved = start.follow("inventory.reserved", trail=trail[:1])
    payment = runtime.domain.payment

    await _publish(runtime, restored)
    await eventually(lambda: _logged(runtime, sid, StepName.REFUND_PAYMENT))
    await _publish(runtime, reserved)
    await eventually(lambda: _consumed(runtime, reserved.event_id))

    log = await _step_log(runtime, sid)
    assert log == {"charge_payment": "noop", "refund_payment": "noop"}  # tombstone + no-op
    assert [c for c in await payment.charges() if c.saga_id == sid] == []
    assert await stream_count(runtime, subject("payment.charged", sid)) == 0
    assert await stream_count(runtime, subject("payment.refunded", sid)) == 1


async def test_late_forward_step_is_rejected_by_the_services_tombstone_after_a_restart(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    """A restarted service knows only its store: its own tombstone still refuses."""
    sid = saga_id("late")
    start = placed(sid, make_order(sid), QUICK, time.time(), ORDERS_V1.ref)
    trail = (StepName.RESERVE_INVENTORY, StepName.CHARGE_PAYMENT)
    await _publish(runtime, start.follow("points.restored", trail=(*trail, StepName.DEDUCT_POINTS)))
    await eventually(lambda: _logged(runtime, sid, StepName.REFUND_PAYMENT))
    host = runtime.runtime.host(ServiceName.PAYMENT)
    await host.stop()
    await host.start()

    reserved = start.follow("inventory.reserved", trail=trail[:1])
    await _publish(runtime, reserved)
    await eventually(lambda: _consumed(runtime, reserved.event_id))

    assert (await _step_log(runtime, sid))["charge_payment"] == StepStatus.NOOP.value
    assert [c for c in await runtime.domain.payment.charges() if c.saga_id == sid] == []
    assert await stream_count(runtime, subject("payment.charged", sid)) == 0


async def _step_log(runtime: Faulty[ChoreographyRuntime], sid: str) -> dict[str, str]:
    rows = await runtime.domain.payment.store.query(
        "SELECT step, status FROM step_log WHERE saga_id = ?", (sid,)
    )
    return {row["step"]: row["status"] for row in rows}


async def _logged(runtime: Faulty[ChoreographyRuntime], sid: str, step: StepName) -> bool:
    return step.value in await _step_log(runtime, sid)


async def _consumed(runtime: Faulty[ChoreographyRuntime], event_id: str) -> bool:
    rows = await runtime.domain.payment.store.query(
        "SELECT 1 AS one FROM inbox WHERE event_id = ?", (event_id,)
    )
    return bool(rows)
