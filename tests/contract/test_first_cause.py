"""Whatever happened first decides a saga's reason, however late its coordinator learns it.

A card is declined well before the business deadline. In the choreography the tracker (the
only one who knows the saga) is held down past that deadline: back, it enforces the expired
deadline before it has folded the failure. In the orchestration the workflow's history keeps
the failure before the timer, however late a worker replays it. Both must report the decline.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from choreography.access import ADMIN
from choreography.broker import SAGA_STREAM
from choreography.bus import Bus
from choreography.events import CANCEL_REQUESTED, subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from harness.compare.scenarios import FAST, order
from shared.contracts import Reason, SagaStatus, StepName
from shared.faults import FaultPlan
from shared.runtime import SagaRuntime

pytestmark = pytest.mark.asyncio(loop_scope="module")

DEADLINE = FAST.model_copy(update={"deadline_s": 2.0})
PATIENCE_S = 30.0


async def until(probe: Callable[[], Awaitable[object]], what: str) -> None:
    """Wait for an observed state (not a duration): fail naming it after PATIENCE_S."""
    deadline = time.monotonic() + PATIENCE_S
    while not await probe():
        assert time.monotonic() < deadline, f"never observed: {what}"
        await asyncio.sleep(0.02)


async def stream_holds(runtime: ChoreographyRuntime, value: str) -> bool:
    info = await runtime.bus.js.stream_info(SAGA_STREAM, subjects_filter=value)
    return bool((info.state.subjects or {}).get(value))


async def declined(runtime: Faulty[SagaRuntime], saga_id: str) -> float | None:
    """When the payment service recorded the decline (epoch seconds), if it did."""
    rows = await runtime.domain.payment.store.query(
        "SELECT at FROM step_log WHERE saga_id = ? AND step = ? AND status = 'failed'",
        (saga_id, StepName.CHARGE_PAYMENT.value),
    )
    return float(rows[0]["at"]) if rows else None


@asynccontextmanager
async def tracker_held_down(runtime: Faulty[SagaRuntime], saga_id: str) -> AsyncIterator[None]:
    """Choreography: the tracker folds nothing until the decline happened and the deadline's
    cancel went out. Orchestration: nothing to hold; the history orders the events."""
    raw = runtime.runtime
    if not isinstance(raw, ChoreographyRuntime):
        yield
        return
    durable = raw.settings.tracker_spec().durable
    nats = raw.settings.nats  # pausing a durable is the operator's (admin's) right, not front's
    admin = await Bus.connect(nats.servers, "first-cause-admin", nats.login_for(ADMIN))
    await admin.pause(durable, 3_600)
    try:
        yield
        await until(lambda: declined(runtime, saga_id), "the decline")
        cancel = subject(CANCEL_REQUESTED, saga_id)
        await until(lambda: stream_holds(raw, cancel), "the deadline's cancel")
    finally:
        await admin.js.resume_consumer(SAGA_STREAM, durable)
        await admin.close()


async def test_a_failure_before_the_deadline_decides_the_reason_after_a_coordinator_outage(
    runtime: Faulty[SagaRuntime],
) -> None:
    await runtime.domain.inventory.seed({"widget": ("Widget", 1_999, 10)})
    await runtime.domain.points.seed({"alice": 5_000})
    saga_id = f"first-cause-{uuid.uuid4().hex[:8]}"
    started = time.time()

    async with tracker_held_down(runtime, saga_id):
        await runtime.start_saga(saga_id, order(saga_id, card="card-0002"), FaultPlan(), DEADLINE)
    outcome = await runtime.wait(saga_id, PATIENCE_S)

    at = await declined(runtime, saga_id)
    assert at is not None and at < started + DEADLINE.deadline_s, "premise: declined in time"
    assert (outcome.status, outcome.reason, outcome.failed_step) == (
        SagaStatus.COMPENSATED,
        Reason.PAYMENT_DECLINED,
        StepName.CHARGE_PAYMENT,
    )
    assert await runtime.domain.inventory.reserved() == {}
