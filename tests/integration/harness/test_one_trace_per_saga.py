"""One trace per saga, really: every span of a saga is in the trace its root span opens.

An operator's actions on sagas that wait for one, and the live monitor reading every saga:
none of it may start a trace of its own for a saga. The whole catalogue on both styles is
checked on the review's own run of it (tests/e2e/test_review_browser.py), which runs the
same `session.run(CATALOGUE)`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.compare.scenarios import get
from harness.report.health import trace_health
from harness.session import VARIANTS, open_session
from monitor.settings import MonitorSettings
from monitor.wiring import board_for

pytestmark = pytest.mark.slow


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
