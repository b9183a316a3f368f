"""A cancel reaches every service: done steps wait for the chain, the step in flight is
tombstoned, a service never reached puts up a fence and refuses its late trigger."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreography.events import subject
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import Phase, Reason, SagaStatus, ServiceName, StepName, StepStatus
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
    stream_count,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_service_never_reached_refuses_its_late_trigger_and_hands_the_chain_back(
    runtime: Faulty[ChoreographyRuntime],
) -> None:
    """The tracker lags (paused), so the cancel does not name points; points is paused too."""
    settings = runtime.runtime.settings
    await runtime.runtime.bus.pause(settings.tracker_spec().durable, 2.0)
    await runtime.runtime.bus.pause(
        settings.participant_spec(ServiceName.POINTS, ROUTES).durable, 1.0
    )
    sid = saga_id("fence")

    await runtime.start_saga(sid, make_order(sid, points=100), FaultPlan(), QUICK)

    async def charged() -> bool:
        return any(c.saga_id == sid for c in await runtime.domain.payment.charges())

    await eventually(charged)
    await runtime.cancel_saga(sid)
    outcome = await runtime.wait(sid, 10)

    assert (outcome.status, outcome.reason) == (
        SagaStatus.COMPENSATED,
        Reason.CANCELLED_BY_CUSTOMER,
    )
    states = {(s.step, s.phase): s.status for s in outcome.steps}
    assert states[(StepName.DEDUCT_POINTS, Phase.FORWARD)] is StepStatus.REJECTED
    assert (StepName.RESTORE_POINTS, Phase.COMPENSATE) not in states
    assert states[(StepName.REFUND_PAYMENT, Phase.COMPENSATE)] is StepStatus.DONE
    assert await stream_count(runtime, subject("points.refused", sid)) == 1
    assert (await runtime.domain.points.balances())["alice"] == 5_000
    charge = next(c for c in await runtime.domain.payment.charges() if c.saga_id == sid)
    assert charge.refunded_cents == charge.amount_cents


async def test_a_report_held_after_the_commit_is_not_published_by_the_relays_poll(
    settings: Settings, tmp_path: Path
) -> None:
    """The points step commits, then holds its report until the cancel has fenced the pivot.

    The relay polls its store every 2 ms here: had the poll published the committed
    ``points.deducted`` row, the shipment would start before the cancel reaches it.
    """
    plan = FaultPlan(
        rules=[FaultRule(step=StepName.DEDUCT_POINTS, delay_after_ms=5_000, until_cancelled=True)]
    )
    async with open_faulty(tmp_path / "data", settings(relay_poll_s=0.002)) as runtime:
        await seed(runtime.domain)
        sid = saga_id("held")
        await runtime.start_saga(sid, make_order(sid, points=100), plan, QUICK)

        async def points_committed() -> bool:
            status = await runtime.domain.points.step_status(sid, StepName.DEDUCT_POINTS)
            return status is StepStatus.DONE

        await eventually(points_committed)
        await runtime.cancel_saga(sid)
        outcome = await runtime.wait(sid, 10)

        assert (outcome.status, outcome.reason) == (
            SagaStatus.COMPENSATED,
            Reason.CANCELLED_BY_CUSTOMER,
        )
        assert [s for s in await runtime.domain.shipping.shipments() if s.saga_id == sid] == []
        assert (await runtime.domain.points.balances())["alice"] == 5_000
