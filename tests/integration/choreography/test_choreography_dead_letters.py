"""Poison messages and spent delivery budgets end in the dead-letter stream, then stop."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from choreography.broker import ADVISORY_STREAM, DLQ_STREAM, SAGA_STREAM
from choreography.events import placed, subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import Reason, SagaStatus, ServiceName, StepName
from shared.definitions import ORDERS_V1, definition_named
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed
from tests.integration.choreography.choreography_support import (
    QUICK,
    ROUTES,
    Settings,
    eventually,
    make_order,
    open_faulty,
    saga_id,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _consumer(runtime: Faulty[ChoreographyRuntime], service: ServiceName) -> tuple[int, int]:
    """(deliveries so far, messages awaiting an ack) of a service's durable."""
    durable = runtime.runtime.settings.participant_spec(service, ROUTES).durable
    info = await runtime.runtime.bus.js.consumer_info(SAGA_STREAM, durable)
    assert info.delivered is not None
    return info.delivered.consumer_seq or 0, info.num_ack_pending or 0


async def _has(runtime: Faulty[ChoreographyRuntime], stream: str, value: str) -> bool:
    info = await runtime.runtime.bus.js.stream_info(stream, subjects_filter=value)
    return bool(info.state.subjects)


async def test_poison_message_lands_in_the_dead_letter_stream_with_its_headers_then_stops(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    poisoned = subject("order.placed", saga_id("poison"))
    headers = {"Nats-Msg-Id": poisoned, "X-Origin": "a broken producer"}
    dead = f"dlq.inventory.{poisoned}"

    await runtime.runtime.bus.js.publish(poisoned, b"not an event", headers=headers)
    await eventually(lambda: _has(runtime, DLQ_STREAM, dead))

    async def settled() -> bool:  # delivered once, nothing awaiting an ack: none will come again
        return await _consumer(runtime, ServiceName.INVENTORY) == (1, 0)

    await eventually(settled)

    letter = await runtime.runtime.bus.js.get_last_msg(DLQ_STREAM, dead)
    assert letter.data == b"not an event"
    assert letter.headers is not None
    assert letter.headers["X-Origin"] == "a broken producer"
    assert letter.headers["Dlq-Msg-Id"] == poisoned
    assert "undecodable" in letter.headers["Dlq-Reason"]
    assert letter.headers["Dlq-Delivered"] == "1"
    assert await _has(runtime, DLQ_STREAM, f"dlq.tracker.{poisoned}")
    advisories = await runtime.runtime.bus.js.stream_info(ADVISORY_STREAM)
    assert advisories.state.messages >= 1  # the MSG_TERMINATED advisory is kept too


async def test_spent_delivery_budget_dead_letters_the_event_and_the_deadline_ends_the_saga(
    settings: Settings, tmp_path: Path
) -> None:
    down = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, transient=1_000)])
    policy = QUICK.model_copy(update={"deadline_s": 1.5})
    async with open_faulty(tmp_path, settings(max_deliver=3)) as runtime:
        await seed(runtime.domain)
        sid = saga_id("spent")
        dead = f"dlq.payment.{subject('inventory.reserved', sid)}"

        await runtime.start_saga(sid, make_order(sid), down, policy)
        outcome = await runtime.wait(sid, 15)

        assert (outcome.status, outcome.reason) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
        letter = await runtime.runtime.bus.js.get_last_msg(DLQ_STREAM, dead)
        assert letter.headers is not None
        assert letter.headers["Dlq-Delivered"] == "3"
        assert "deliveries exhausted" in letter.headers["Dlq-Reason"]
        assert await runtime.domain.inventory.reserved() == {}
        assert [c for c in await runtime.domain.payment.charges() if c.saga_id == sid] == []


async def test_an_event_of_another_saga_definition_is_dead_lettered_naming_both(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    sid = saga_id("other-definition")
    voucher = definition_named("voucher")
    placed_elsewhere = placed(sid, make_order(sid), QUICK, time.time(), voucher.ref)
    dead = f"dlq.inventory.{placed_elsewhere.subject}"

    await runtime.runtime.bus.js.publish(
        placed_elsewhere.subject,
        placed_elsewhere.model_dump_json().encode(),
        headers={"Nats-Msg-Id": placed_elsewhere.event_id},
    )
    await eventually(lambda: _has(runtime, DLQ_STREAM, dead))

    letter = await runtime.runtime.bus.js.get_last_msg(DLQ_STREAM, dead)
    assert letter.headers is not None
    reason = letter.headers["Dlq-Reason"]
    assert f"made by saga definition {voucher.ref}" in reason
    assert f"this process holds {ORDERS_V1.ref}" in reason
    assert await runtime.domain.inventory.reserved() == {}
