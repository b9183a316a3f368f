"""Stress mode with tiny sizes: a seeded random mix of colliding sagas on each style, with every
countermeasure on and with none; the checker and the invariants agree on every batch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from harness.anomalies.kinds import Anomaly
from harness.anomalies.lab import Labs
from harness.anomalies.matrix import LabPlan, Switches, stress_settings
from harness.anomalies.scenarios import Setting
from harness.anomalies.stress import mix, stress_cell
from shared.countermeasures import Countermeasures
from shared.store import sqlite_stores

pytestmark = pytest.mark.slow
"""Many runtimes, each with its own servers: the slow tier (`make test`, CI)."""

ON = Setting("on", Countermeasures())
OFF = Setting("off", Countermeasures.parse("none"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def labs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Labs]:
    root: Path = tmp_path_factory.mktemp("stress")
    opened = Labs(lambda variant, name: sqlite_stores(root / variant / name / "stores"), root)
    yield opened
    await opened.close()


def test_the_mix_depends_on_the_seed_alone() -> None:
    assert mix(7, 0) == mix(7, 0)
    assert mix(7, 0) != mix(8, 0)
    assert {s.late_step for s in mix(7, 0) + mix(7, 1)} > {None}


def test_both_switches_stress_on_off_and_each_countermeasure_alone_off() -> None:
    plan = LabPlan(tuple(Anomaly), Switches.both, ("choreography",), stress=20)

    names = [setting.name for setting in stress_settings(plan)]

    assert names == [
        "on",
        "off",
        "commutative_updates off",
        "points_lock off",
        "by_value off",
        "reread instead of by value",
        "order_lock off",
        "version_file off",
    ]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", ["orchestration", "choreography"])
async def test_with_every_countermeasure_on_the_mix_shows_no_anomaly(
    labs: Labs, variant: str
) -> None:
    cell = await stress_cell(await labs.get(variant, ON), ON, 20, seed=3)

    assert (cell.sagas, cell.stuck, cell.disagreements) == (20, 0, 0)
    assert cell.by_history == {} == cell.by_invariants
    assert sum(cell.outcomes.values()) == 20 - cell.refused_at_admission
    assert cell.p50_ms is not None and cell.p95_ms is not None and cell.p50_ms <= cell.p95_ms
    assert cell.throughput_per_s > 0


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", ["orchestration", "choreography"])
async def test_with_no_countermeasure_the_mix_shows_anomalies_both_checks_count_alike(
    labs: Labs, variant: str
) -> None:
    # One batch: seed 3's first 20 sagas hold declined cards whose snapshots collide with
    # other reservations of their product (two lost updates in each style, run after run).
    cell = await stress_cell(await labs.get(variant, OFF), OFF, 20, seed=3)

    assert (cell.sagas, cell.stuck, cell.disagreements) == (20, 0, 0)
    assert cell.by_history == cell.by_invariants
    assert cell.by_history.get(Anomaly.LOST_UPDATE, 0) >= 1
    assert cell.per_10k(Anomaly.LOST_UPDATE) == round(
        cell.by_history[Anomaly.LOST_UPDATE] * 10_000 / 20, 1
    )
