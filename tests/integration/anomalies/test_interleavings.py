"""The five anomalies, each forced by holds, with its countermeasure off and on, in both styles.

Each test runs a scenario of `harness/anomalies/scenarios.py` on a real runtime (an embedded
Temporal server and worker, or a nats-server and the five services with the tracker) whose
services run with the cell's countermeasures, then checks both ways the lab finds anomalies:
the history checker and the invariants over the state left. Off, the anomaly shows (in the
styles where it can happen) and both name the same sagas; on, neither finds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from harness.anomalies.kinds import Anomaly
from harness.anomalies.lab import Labs, run_cell
from harness.anomalies.results import CellRun
from harness.anomalies.scenarios import SCENARIOS, Scenario, Setting
from shared.postgres_server import EmbeddedPostgres
from shared.store import StoreFactory, sqlite_stores
from shared.store.postgres import postgres_stores

pytestmark = pytest.mark.slow
"""Many runtimes, each with its own servers: the slow tier (`make test`, CI)."""

VARIANTS = ("orchestration", "choreography")
INVOLVED = {
    Anomaly.LOST_UPDATE: ("A", "B"),
    Anomaly.DIRTY_READ: ("A", "B"),
    Anomaly.FUZZY_READ: ("A",),
    Anomaly.CANCEL_OVERWRITTEN: ("A",),
    Anomaly.EARLY_COMPENSATION: ("A",),
}
"""The sagas each anomaly's interleaving involves, by letter."""
ENDS: dict[tuple[Anomaly, str], tuple[str, ...]] = {
    (Anomaly.LOST_UPDATE, "off"): ("A: COMPENSATED (payment_declined)", "B: COMPLETED"),
    (Anomaly.LOST_UPDATE, "on"): ("A: COMPENSATED (payment_declined)", "B: COMPLETED"),
    (Anomaly.DIRTY_READ, "off"): (
        "A: COMPENSATED (shipment_failed)",
        "B: COMPENSATED (insufficient_points)",
    ),
    (Anomaly.DIRTY_READ, "points_lock on"): ("A: COMPENSATED (shipment_failed)", "B: COMPLETED"),
    (Anomaly.DIRTY_READ, "pessimistic view"): (
        "A: NEEDS_INTERVENTION",
        "B: COMPENSATED (insufficient_points)",
    ),
    (Anomaly.FUZZY_READ, "off"): ("A: COMPLETED",),
    (Anomaly.FUZZY_READ, "by_value on"): ("A: COMPLETED",),
    (Anomaly.FUZZY_READ, "reread_value on"): ("A: COMPENSATED (price_changed)",),
    (Anomaly.EARLY_COMPENSATION, "off"): ("A: COMPENSATED (cancelled_by_customer)",),
    (Anomaly.EARLY_COMPENSATION, "on"): ("A: COMPENSATED (cancelled_by_customer)",),
}
"""How each saga of a cell settles (the outcome it reported), where the style does not matter;
``off``/``on`` stand for a scenario's only cell of that kind."""


def on_cells() -> list[tuple[Scenario, Setting]]:
    return [(scenario, setting) for scenario in SCENARIOS.values() for setting in scenario.on]


def ends_of(cell: CellRun) -> tuple[str, ...]:
    return tuple(end.label for end in cell.sagas)


def expected_ends(scenario: Scenario, setting: Setting) -> tuple[str, ...] | None:
    kind = "off" if setting is scenario.off else "on"
    return ENDS.get((scenario.anomaly, setting.name), ENDS.get((scenario.anomaly, kind)))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def labs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Labs]:
    root: Path = tmp_path_factory.mktemp("anomalies")
    opened = Labs(lambda variant, name: sqlite_stores(root / variant / name / "stores"), root)
    yield opened
    await opened.close()


def _found(cell: CellRun, by_invariants: bool = False) -> list[tuple[str, ...]]:
    findings = cell.by_invariants if by_invariants else cell.by_history
    letters = {end.saga_id: end.letter for end in cell.sagas}
    return [tuple(letters[s] for s in f.sagas) for f in cell.found(findings)]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "anomaly",
    [Anomaly.LOST_UPDATE, Anomaly.DIRTY_READ, Anomaly.FUZZY_READ],
    ids=str,
)
async def test_with_its_countermeasure_off_an_anomaly_breaks_its_invariant_naming_the_sagas(
    labs: Labs, anomaly: Anomaly, variant: str
) -> None:
    scenario = SCENARIOS[anomaly]
    cell = await run_cell(await labs.get(variant, scenario.off), scenario, scenario.off)

    assert _found(cell) == [INVOLVED[anomaly]]
    assert _found(cell, by_invariants=True) == [INVOLVED[anomaly]]
    assert cell.agree and cell.as_expected
    assert ends_of(cell) == expected_ends(scenario, scenario.off)


@pytest.mark.asyncio(loop_scope="module")
async def test_in_the_choreography_a_late_reservation_commits_after_the_cancel_fenced_it(
    labs: Labs,
) -> None:
    scenario = SCENARIOS[Anomaly.EARLY_COMPENSATION]
    cell = await run_cell(await labs.get("choreography", scenario.off), scenario, scenario.off)

    assert _found(cell) == [("A",)]
    assert _found(cell, by_invariants=True) == [("A",)]
    assert cell.agree and cell.as_expected
    assert ends_of(cell) == ("A: COMPENSATED (cancelled_by_customer)",)
    (leak,) = cell.found(cell.by_invariants)
    assert "a reservation" in leak.note


@pytest.mark.asyncio(loop_scope="module")
async def test_in_the_choreography_a_late_completion_overwrites_the_cancel_without_the_lock(
    labs: Labs,
) -> None:
    scenario = SCENARIOS[Anomaly.CANCEL_OVERWRITTEN]
    cell = await run_cell(await labs.get("choreography", scenario.off), scenario, scenario.off)

    assert _found(cell) == [("A",)]
    assert _found(cell, by_invariants=True) == [("A",)]
    assert cell.agree and cell.as_expected
    assert ends_of(cell) == ("A: COMPENSATED (cancelled_by_customer)",)
    (overwritten,) = cell.found(cell.by_invariants)
    assert overwritten.note.endswith("its order says COMPLETED")


@pytest.mark.asyncio(loop_scope="module")
async def test_in_the_orchestration_a_step_committing_after_its_fence_is_compensated_not_leaked(
    labs: Labs,
) -> None:
    """Version file off: the fence leaves no tombstone, the first attempt of the reservation is
    abandoned (held past its timeout) and commits once the next attempt arrives — after the
    fence. The workflow waits for the attempt's answer and compensates it."""
    scenario = SCENARIOS[Anomaly.EARLY_COMPENSATION]
    cell = await run_cell(await labs.get("orchestration", scenario.off), scenario, scenario.off)

    events = [(e.kind, e.step, e.attempt, e.outcome) for e in cell.history if e.kind != "read"]
    fence = events.index(("fence", "reserve_inventory", None, "fenced"))
    commit = events.index(("step", "reserve_inventory", 1, "done"))
    release = events.index(("step", "release_inventory", 1, "done"))
    assert fence < commit < release
    assert ("step", "reserve_inventory", 2, "replayed") in events
    assert cell.by_history == [] and cell.by_invariants == []
    assert cell.as_expected
    assert ends_of(cell) == ("A: COMPENSATED (cancelled_by_customer)",)


@pytest.mark.asyncio(loop_scope="module")
async def test_in_the_orchestration_a_late_pivot_wins_over_the_cancel_so_nothing_is_overwritten(
    labs: Labs,
) -> None:
    scenario = SCENARIOS[Anomaly.CANCEL_OVERWRITTEN]
    cell = await run_cell(await labs.get("orchestration", scenario.off), scenario, scenario.off)

    events = [(e.kind, e.step, e.outcome) for e in cell.history if e.kind in ("fence", "step")]
    assert events.index(("fence", "create_shipment", "fenced")) < events.index(
        ("step", "create_shipment", "done")
    )
    assert cell.by_history == [] and cell.by_invariants == []
    assert cell.as_expected
    assert ends_of(cell) == ("A: COMPLETED",)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    ("scenario", "setting"),
    on_cells(),
    ids=[f"{s.anomaly}-{setting.name.replace(' ', '_')}" for s, setting in on_cells()],
)
async def test_with_a_countermeasure_on_its_anomaly_does_not_show(
    labs: Labs, scenario: Scenario, setting: Setting, variant: str
) -> None:
    cell = await run_cell(await labs.get(variant, setting), scenario, setting)

    assert _found(cell) == [] and _found(cell, by_invariants=True) == []
    assert cell.agree and cell.as_expected
    wanted = expected_ends(scenario, setting)
    if wanted is not None:
        assert ends_of(cell) == wanted
    if scenario.anomaly is Anomaly.CANCEL_OVERWRITTEN and variant == "choreography":
        # The version file is off in this scenario: the late shipment itself still leaks.
        # (Failed once in a run under a load of 8-9: none found; the story says how it went.)
        found = [f.anomaly for f in cell.by_history]
        assert found == [Anomaly.EARLY_COMPENSATION], story(cell)


def story(cell: CellRun) -> str:
    """How a cell went, for a failure's message: how each saga ended, then its history."""
    lines = [*ends_of(cell)]
    for e in cell.history:
        step = f" {e.step} ({e.phase}, attempt {e.attempt})" if e.step else ""
        lines.append(f"{e.seq} {e.kind}{step}: {e.outcome or ''} {e.reason or ''}".rstrip())
    return "\n".join(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def postgres_labs(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: EmbeddedPostgres
) -> AsyncIterator[Labs]:
    root: Path = tmp_path_factory.mktemp("anomalies-postgres")
    url = await postgres_server.create_database("anomalies")

    def places(variant: str, name: str) -> StoreFactory:
        return postgres_stores(url, schema_prefix=f"{variant[:5]}_{name}_")

    opened = Labs(places, root)
    yield opened
    await opened.close()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("anomaly", [Anomaly.LOST_UPDATE, Anomaly.DIRTY_READ], ids=str)
async def test_on_postgres_the_store_shows_and_prevents_the_anomaly_as_sqlite_does(
    postgres_labs: Labs, anomaly: Anomaly, variant: str
) -> None:
    scenario = SCENARIOS[anomaly]
    off = await run_cell(await postgres_labs.get(variant, scenario.off), scenario, scenario.off)
    on_setting = scenario.on[0]
    on = await run_cell(await postgres_labs.get(variant, on_setting), scenario, on_setting)

    assert _found(off) == [INVOLVED[anomaly]] == _found(off, by_invariants=True)
    assert _found(on) == [] == _found(on, by_invariants=True)
    assert off.as_expected and on.as_expected
