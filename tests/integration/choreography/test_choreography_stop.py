"""A clean stop of the choreography's processes: handlers still running get one grace period to
finish, together, whichever services they run in (choreography/bootstrap.py, host.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from choreography.runtime import open_runtime
from harness.compare.faulty import Faulty
from shared import faults
from shared.contracts import SagaPolicy, StepName
from shared.definitions import ORDERS_V1
from shared.faults import FaultInjector, FaultPlan, Hold, MemoryPlans, Signals, reached, released
from shared.seed import seed
from tests.integration.choreography.choreography_support import Settings, make_order

pytestmark = pytest.mark.asyncio(loop_scope="module")

GRACE_S = 5.0
"""What `Consumer.stop` grants running handlers before it cancels them."""
PATIENT = SagaPolicy(deadline_s=300.0, attempt_timeout_s=120.0)
"""An attempt that outlives the test: only the stop ends a held handler."""


async def test_a_stop_gives_handlers_held_in_two_services_one_grace_period_together(
    settings: Settings, tmp_path: Path
) -> None:
    board, signals = MemoryPlans(), Signals()
    hooks = faults.hooks(FaultInjector.for_variant("choreography", board, signals))
    held = {"stop-a": StepName.RESERVE_INVENTORY, "stop-b": StepName.CHARGE_PAYMENT}
    async with open_runtime(
        tmp_path / "data", ORDERS_V1, settings=settings(), hooks=hooks
    ) as runtime:
        await seed(runtime.domain)
        faulty = Faulty(runtime, board)
        for saga_id, step in held.items():
            hold = Hold(step=step, at="after", until=released("never"), timeout_s=120)
            await faulty.start_saga(saga_id, make_order(saga_id), FaultPlan(holds=[hold]), PATIENT)
        for saga_id, step in held.items():  # each handler is inside its step, held
            assert await signals.wait(reached(saga_id, step, "after"), 30), saga_id
        stopping = time.monotonic()
    took = time.monotonic() - stopping

    # One service after the other, each granting its grace while the others went on
    # fetching, took a grace period per service (and a process past its stop timeout is
    # killed): together, it is one.
    assert took < 2 * GRACE_S, took
