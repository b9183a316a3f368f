"""The transactional outbox against a real nats-server: nothing lost, nothing doubled."""

from __future__ import annotations

from pathlib import Path

import pytest
from choreography_support import QUICK, Settings, eventually, make_order, saga_id, stream_count

from choreography import outbox
from choreography.broker import SAGA_STREAM
from choreography.events import placed, subject
from choreography.runtime import ChoreographyRuntime, open_runtime
from shared.contracts import SagaStatus, ServiceName, StepName
from shared.errors import CrashPoint
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed

pytestmark = pytest.mark.asyncio(loop_scope="module")

CRASH_AFTER_CHARGE = FaultPlan(
    rules=[FaultRule(step=StepName.CHARGE_PAYMENT, crash=CrashPoint.AFTER_COMMIT)]
)


async def _redelivered_and_settled(runtime: ChoreographyRuntime, service: ServiceName) -> bool:
    """The service's one message was delivered twice and nothing is in flight any more."""
    durable = runtime.settings.participant_spec(service).durable
    info = await runtime.bus.js.consumer_info(SAGA_STREAM, durable)
    assert info.delivered is not None
    return info.num_ack_pending == 0 and (info.delivered.consumer_seq or 0) >= 2


async def test_event_committed_before_a_crash_is_published_after_restart_exactly_once(
    settings: Settings, tmp_path: Path
) -> None:
    async with open_runtime(tmp_path, settings=settings(restart_delay_s=1.0)) as runtime:
        await seed(runtime.domain)
        payment = runtime.host(ServiceName.PAYMENT)
        sid = saga_id("crash")
        charged = subject("payment.charged", sid)

        await runtime.start_saga(sid, make_order(sid, points=100), CRASH_AFTER_CHARGE, QUICK)
        await payment.down.wait()

        # Dead: the charge and its event committed together, and nothing left the process.
        assert len(await runtime.domain.payment.charges()) == 1
        unsent = await outbox.unsent(payment.participant.store)
        assert [row.subject for row in unsent] == [charged]
        assert await stream_count(runtime, charged) == 0

        outcome = await runtime.wait(sid, 15)
        await eventually(lambda: _redelivered_and_settled(runtime, ServiceName.PAYMENT))

        assert outcome.status is SagaStatus.COMPLETED
        assert payment.crashes == 1
        assert await stream_count(runtime, charged) == 1
        assert await outbox.unsent(payment.participant.store) == []
        assert len(await runtime.domain.payment.charges()) == 1


async def test_crash_before_commit_rolls_back_and_the_redelivery_does_the_work(
    runtime: ChoreographyRuntime,
) -> None:
    crash = FaultPlan(
        rules=[FaultRule(step=StepName.DEDUCT_POINTS, crash=CrashPoint.BEFORE_COMMIT)]
    )
    sid = saga_id("early")

    await runtime.start_saga(sid, make_order(sid, points=100), crash, QUICK)
    outcome = await runtime.wait(sid, 15)

    assert outcome.status is SagaStatus.COMPLETED
    assert runtime.host(ServiceName.POINTS).crashes == 1
    deduct = next(s for s in outcome.steps if s.step is StepName.DEDUCT_POINTS)
    assert deduct.attempts == 2
    assert (await runtime.domain.points.balances())["alice"] == 5_000 - 100
    assert await stream_count(runtime, subject("points.deducted", sid)) == 1


async def test_relay_publishes_rows_a_dead_process_left_behind_when_it_starts(
    runtime: ChoreographyRuntime,
) -> None:
    shipping = runtime.host(ServiceName.SHIPPING)
    await shipping.stop()
    sid = saga_id("left")
    order = make_order(sid, points=0)
    # A row committed by an earlier life of the process, never handed to any relay.
    event = placed(sid, order, FaultPlan(), QUICK, 0.0).follow("shipping.cancelled")
    await shipping.participant.store.run(lambda tx: outbox.add(tx, event))

    await shipping.start()

    async def published_and_marked() -> bool:
        # The row is marked sent only after the broker's ack: wait for both, in that order.
        published = await _published(runtime, event.subject)
        return published and await outbox.unsent(shipping.participant.store) == []

    await eventually(published_and_marked)


async def _published(runtime: ChoreographyRuntime, value: str) -> bool:
    return await stream_count(runtime, value) == 1
