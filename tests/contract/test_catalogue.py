"""The whole scenario catalogue on both variants: same outcomes, expected state, invariants."""

from __future__ import annotations

import pytest

from harness.compare.faulty import Faulty
from harness.compare.invariants import expected_net, net
from harness.compare.runner import run_scenario
from harness.compare.scenarios import CATALOGUE, Scenario
from shared.contracts import SagaStatus, StepName, StepStatus
from shared.definitions import ORDERS_V1
from shared.runtime import SagaRuntime

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.mark.parametrize("scenario", CATALOGUE, ids=lambda s: s.name)
async def test_scenario_ends_as_expected_with_conserved_state(
    runtime: Faulty[SagaRuntime], scenario: Scenario
) -> None:
    run = await run_scenario(runtime, scenario)

    outcomes = [(r.case.order, r.outcome) for r in run.sagas]
    for saga in run.sagas:
        expected = saga.case.expected
        if expected is None:
            continue
        got = saga.outcome
        assert (got.status, got.reason) == (expected.status, expected.reason), saga.saga_id
        if expected.failed_step is not None:
            assert got.failed_step == expected.failed_step
        assert tuple(got.failed_compensations) == expected.failed_compensations
    if scenario.expected_counts:
        statuses = [r.outcome.status for r in run.sagas]
        assert {s: statuses.count(s) for s in set(statuses)} == scenario.expected_counts
    assert net(run.state) == expected_net(ORDERS_V1, scenario.seed, outcomes)
    assert run.invariants == dict.fromkeys(run.invariants, True)


async def test_skipped_points_step_is_reported_skipped(runtime: Faulty[SagaRuntime]) -> None:
    from harness.compare.scenarios import get

    run = await run_scenario(runtime, get("no_points"))

    steps = {(s.step, s.phase.value): s.status for s in run.sagas[0].outcome.steps}
    assert steps[(StepName.DEDUCT_POINTS, "forward")] is StepStatus.SKIPPED
    assert run.sagas[0].outcome.status is SagaStatus.COMPLETED


async def test_transient_failures_are_counted_as_attempts(runtime: Faulty[SagaRuntime]) -> None:
    from harness.compare.scenarios import get

    run = await run_scenario(runtime, get("transient_payment_error"))

    attempts = {
        s.step: s.attempts for s in run.sagas[0].outcome.steps if s.phase.value == "forward"
    }
    assert attempts[StepName.CHARGE_PAYMENT] == 3
    assert attempts[StepName.RESERVE_INVENTORY] == 1
