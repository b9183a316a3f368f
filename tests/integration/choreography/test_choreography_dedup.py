"""Duplicates at every layer: the broker's dedup window, the inbox, idempotent steps."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from choreography import inbox
from choreography.broker import SAGA_STREAM
from choreography.bus import Outgoing
from choreography.events import subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import SagaStatus, ServiceName, StepName
from shared.faults import FaultPlan, FaultRule
from tests.integration.choreography.choreography_support import (
    QUICK,
    ROUTES,
    eventually,
    make_order,
    saga_id,
    stream_count,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


def _spans(exporter: InMemorySpanExporter, sid: str, name: str) -> list[dict[str, Any]]:
    return [
        dict(span.attributes or {})
        for span in exporter.get_finished_spans()
        if span.name == name and (span.attributes or {}).get("saga.id") == sid
    ]


async def _idle(
    runtime: Faulty[ChoreographyRuntime], service: ServiceName, deliveries: int
) -> bool:
    durable = runtime.runtime.settings.participant_spec(service, ROUTES).durable
    info = await runtime.runtime.bus.js.consumer_info(SAGA_STREAM, durable)
    assert info.delivered is not None
    return info.num_ack_pending == 0 and (info.delivered.consumer_seq or 0) >= deliveries


async def test_redelivered_event_is_acknowledged_without_running_the_step_again(
    runtime: Faulty[ChoreographyRuntime], span_exporter: InMemorySpanExporter
) -> None:
    lost_ack = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, duplicate=True)])
    sid = saga_id("dup")

    await runtime.start_saga(sid, make_order(sid, points=100), lost_ack, QUICK)
    outcome = await runtime.wait(sid, 10)
    await eventually(lambda: _idle(runtime, ServiceName.PAYMENT, deliveries=2))

    assert outcome.status is SagaStatus.COMPLETED
    deliveries = _spans(span_exporter, sid, "process saga.inventory.reserved.{saga_id}")
    assert sorted(d["messaging.nats.num_delivered"] for d in deliveries) == [1, 2]
    assert [s["saga.attempt"] for s in _spans(span_exporter, sid, "charge_payment")] == [1]
    assert [c.saga_id for c in await runtime.domain.payment.charges()] == [sid]
    assert await stream_count(runtime, subject("payment.charged", sid)) == 1
    store = runtime.runtime.host(ServiceName.PAYMENT).store
    assert await inbox.seen(store, "payment", f"{sid}:{'inventory.reserved'}")


async def test_copy_of_an_event_published_again_after_the_dedup_window_changes_nothing(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("copy")
    await runtime.start_saga(sid, make_order(sid, points=100), FaultPlan(), QUICK)
    await runtime.wait(sid, 10)
    reserved = subject("inventory.reserved", sid)
    original = await runtime.runtime.bus.js.get_last_msg(SAGA_STREAM, reserved)
    headers = dict(original.headers or {})
    copy = Outgoing(reserved, original.data or b"", headers, msg_id=f"{sid}:copy")

    await runtime.runtime.bus.publish([copy])
    await eventually(lambda: _idle(runtime, ServiceName.PAYMENT, deliveries=2))

    assert await stream_count(runtime, reserved) == 2
    assert [c.saga_id for c in await runtime.domain.payment.charges()] == [sid]
    assert await stream_count(runtime, subject("payment.charged", sid)) == 1
    assert (await runtime.describe(sid)).status is SagaStatus.COMPLETED


async def test_broker_keeps_one_copy_of_an_event_published_twice_with_one_id(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    value = subject("shipping.cancelled", saga_id("twice"))
    event = Outgoing(value, b"{}", {}, msg_id="same-id")

    await runtime.runtime.bus.publish([event])
    await runtime.runtime.bus.publish([event, event])

    assert await stream_count(runtime, value) == 1
