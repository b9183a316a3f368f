"""A real run whose choreography routes one event to the wrong service: its drift names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from choreography.events import Kind, Routing
from harness.compare.conditions import gather
from harness.compare.results import document
from harness.compare.scenarios import get
from harness.report.drift import check_flows
from harness.report.traces import load_traces
from harness.session import VARIANTS, open_session
from shared.settings import Settings


class PointsListenToInventory(Routing):
    """A deployment built with one wrong route: points deducts on ``inventory.reserved``
    (the spec says ``payment.charged``)."""

    def triggers(self, step: str) -> tuple[Kind, ...]:
        if step == "deduct_points":
            return (self.done("reserve_inventory"),)
        return super().triggers(step)


async def test_an_event_routed_to_the_wrong_service_is_a_drift_that_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every place a choreography process builds its routing: the consumers and the tracker
    # (bootstrap), and the participants' rules per saga definition (versions).
    for module in ("choreography.bootstrap", "choreography.versions"):
        monkeypatch.setattr(f"{module}.Routing", PointsListenToInventory)
    traces = tmp_path / "traces.jsonl"
    options = {"choreography": {"broker_state_dir": tmp_path / "nats"}}
    async with open_session(
        ["choreography"], tmp_path / "state", traces, options=options
    ) as session:
        runs = await session.run([get("happy_path")], timeout_s=30)

    results = check_flows(document(runs), load_traces(traces))

    assert results.flows_checked == 1
    (drifting,) = results.drift
    assert "extra trigger inventory -> points: inventory.reserved (of deduct_points)" in (
        drifting.findings
    )
    assert "missing trigger payment -> points: payment.charged (of deduct_points)" in (
        drifting.findings
    )
    assert not results.held


async def test_the_same_run_routed_as_the_spec_says_does_not_drift(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    options = {"choreography": {"broker_state_dir": tmp_path / "nats"}}
    async with open_session(
        ["choreography"], tmp_path / "state", traces, options=options
    ) as session:
        runs = await session.run([get("happy_path")], timeout_s=30)

    results = check_flows(document(runs), load_traces(traces))

    assert (results.flows_checked, results.drift) == (1, [])


async def test_a_run_of_another_definition_is_checked_against_that_definition(
    tmp_path: Path,
) -> None:
    # The voucher definition adds apply_voucher before the pivot: against v1 its spans would
    # be steps the spec does not have (a drift); its run conditions name the definition.
    settings = Settings(definition="voucher", data_dir=tmp_path / "data")
    traces = tmp_path / "traces.jsonl"
    options = {"choreography": {"broker_state_dir": tmp_path / "nats"}}
    async with open_session(
        list(VARIANTS), tmp_path / "state", traces, settings=settings, options=options
    ) as session:
        runs = await session.run([get("happy_path"), get("shipment_failed")], timeout_s=30)
    conditions = gather(store="sqlite", definition="voucher")

    results = check_flows(document(runs, conditions), load_traces(traces))

    assert results.conditions is not None and results.conditions.definition == "voucher"
    assert (results.flows_checked, results.drift) == (4, [])
    assert results.held
