"""One trace per saga, really: every span of a saga is in the trace its root span opens.

The whole catalogue on both styles; then an operator's actions on sagas that wait for one,
and the live monitor reading every saga: none of it may start a trace of its own for a saga.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compare.scenarios import CATALOGUE, get
from harness.report.health import trace_health
from harness.session import VARIANTS, open_session
from monitor.settings import MonitorSettings
from monitor.wiring import board_for

pytestmark = pytest.mark.slow


async def test_every_saga_of_every_scenario_is_one_trace_in_both_styles(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    options = {"choreography": {"broker_state_dir": tmp_path / "nats"}}
    async with open_session(list(VARIANTS), tmp_path / "state", traces, options=options) as session:
        runs = await session.run(list(CATALOGUE))

    health = trace_health(traces)

    assert (
        health.sagas == sum(len(r.sagas) for r in runs) == 2 * sum(len(s.sagas) for s in CATALOGUE)
    )
    assert health.split == (), health.strays
    assert not health.harness_only


async def test_operator_actions_and_the_monitor_s_reads_stay_in_the_saga_s_trace(
    tmp_path: Path,
) -> None:
    traces = tmp_path / "traces.jsonl"
    options = {"choreography": {"broker_state_dir": tmp_path / "nats"}}
    async with open_session(list(VARIANTS), tmp_path / "state", traces, options=options) as session:
        runs = await session.run([get("compensation_never_succeeds"), get("completion_refused")])
        board = board_for(session.runtimes, MonitorSettings())
        for run in runs:
            runtime = session.runtimes[run.variant]
            (saga,) = run.sagas
            model = board.models[run.variant]
            assert await model.saga(saga.saga_id) is not None  # the monitor reads it
            if run.scenario.name == "compensation_never_succeeds":
                await runtime.retry_compensation(saga.saga_id, "operator")
            else:
                await runtime.resolve(saga.saga_id, "operator", "shipped by hand")
            await model.saga(saga.saga_id)

    health = trace_health(traces)

    assert health.sagas == 4
    assert health.split == (), health.strays
