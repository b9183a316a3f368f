"""A whole lab run: the deterministic matrix (anomaly x setting x style) and the stress cells.

Runtimes are opened one at a time — one per style and per what its services run with — and
stopped before the next, so a run holds one Temporal server or one broker at a time. Stress cells
take turns (`TURN` sagas each), so their latency and throughput compare within the same window.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.anomalies import scenarios as sc
from harness.anomalies.kinds import ABOUT, Anomaly
from harness.anomalies.lab import Places, open_lab, run_cell, slug
from harness.anomalies.results import CellRun
from harness.anomalies.stress import BATCH, StressCell, Tally, run_batches
from shared.countermeasures import Countermeasures
from shared.telemetry import Tracing

Progress = Callable[[str], None]
TURN = 200
"""Sagas a stress cell runs before the next cell takes its turn."""


class Switches(StrEnum):
    """``--countermeasures``: the cells with them off, on, or both."""

    on = "on"
    off = "off"
    both = "both"


@dataclass(frozen=True)
class LabPlan:
    anomalies: tuple[Anomaly, ...]
    switches: Switches
    variants: tuple[str, ...]
    stress: int = 0
    """Sagas per stress cell (0: no stress run)."""
    seed: int = 7


class Machine(BaseModel):
    """Where the run ran, and how loaded the machine was (it may be shared)."""

    model_config = ConfigDict(frozen=True)

    cpus: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = None

    @classmethod
    def now(cls) -> Machine:
        return cls(cpus=os.cpu_count() or 1, load_before=_load())


class LabDocument(BaseModel):
    """What `saga-compare anomalies` found: the matrix cells, the stress cells, the verdict."""

    command: str
    seed: int
    stress_sagas: int
    started_at: float
    seconds: float
    machine: Machine
    matrix: list[CellRun]
    stress: list[StressCell]

    @property
    def ok(self) -> bool:
        """Each anomaly shows with its countermeasure off (where it can happen) and none with
        it on; checker and invariants agree everywhere; no stress saga got stuck."""
        cells = all(cell.as_expected for cell in self.matrix)
        stressed = all(c.disagreements == 0 and c.stuck == 0 for c in self.stress)
        return cells and stressed


def matrix_cells(plan: LabPlan) -> list[tuple[sc.Scenario, sc.Setting]]:
    chosen = []
    for anomaly in plan.anomalies:
        scenario = sc.SCENARIOS[anomaly]
        if plan.switches in (Switches.off, Switches.both):
            chosen.append((scenario, scenario.off))
        if plan.switches in (Switches.on, Switches.both):
            chosen += [(scenario, setting) for setting in scenario.on]
    return chosen


def stress_settings(plan: LabPlan) -> list[sc.Setting]:
    """On (the defaults), off (none), and with ``both`` each countermeasure of the chosen
    anomalies alone off (what it costs), and reread value in place of by value."""
    on = sc.Setting("on", Countermeasures())
    off = sc.Setting("off", Countermeasures.parse("none"))
    if plan.switches is Switches.on:
        return [on]
    if plan.switches is Switches.off:
        return [off]
    alone = []
    for anomaly in plan.anomalies:
        for name in ABOUT[anomaly].countermeasures:
            if name == "reread_value":
                switches = Countermeasures.parse("-by_value,reread_value")
                alone.append(sc.Setting("reread instead of by value", switches))
            elif name in Countermeasures.model_fields:
                alone.append(sc.Setting(f"{name} off", Countermeasures.only_off(name)))
    return [on, off, *alone]


async def run_lab(
    plan: LabPlan,
    places: Places,
    data_dir: Path,
    tracing: Tracing | None,
    progress: Progress,
    command: str = "",
) -> LabDocument:
    began, machine = time.time(), Machine.now()
    cells = await _matrix(plan, places, data_dir, tracing, progress)
    stressed = await _stress(plan, places, data_dir, progress) if plan.stress else []
    machine = machine.model_copy(update={"load_after": _load()})
    return LabDocument(
        command=command,
        seed=plan.seed,
        stress_sagas=plan.stress,
        started_at=began,
        seconds=round(time.time() - began, 1),
        machine=machine,
        matrix=cells,
        stress=stressed,
    )


async def _matrix(
    plan: LabPlan, places: Places, data_dir: Path, tracing: Tracing | None, progress: Progress
) -> list[CellRun]:
    chosen = matrix_cells(plan)
    found: dict[tuple[int, int], CellRun] = {}
    for variant in plan.variants:
        for key, group in _grouped(chosen).items():
            setting = group[0][1]
            progress(f"{variant}: services with {key}")
            async with open_lab(variant, setting, places, data_dir / "matrix", tracing) as lab:
                for scenario, cell_setting in group:
                    cell = await run_cell(lab, scenario, cell_setting)
                    progress(f"  {scenario.anomaly.value} / {cell_setting.name}: {_verdict(cell)}")
                    at = (chosen.index((scenario, cell_setting)), plan.variants.index(variant))
                    found[at] = cell
    return [found[key] for key in sorted(found)]


def _grouped(
    chosen: Sequence[tuple[sc.Scenario, sc.Setting]],
) -> dict[str, list[tuple[sc.Scenario, sc.Setting]]]:
    groups: dict[str, list[tuple[sc.Scenario, sc.Setting]]] = {}
    for scenario, setting in chosen:
        groups.setdefault(slug(setting), []).append((scenario, setting))
    return groups


def _verdict(cell: CellRun) -> str:
    shown = "observed" if cell.observed else "not observed"
    fine = "as expected" if cell.as_expected else "NOT as expected"
    return f"{shown} ({fine})"


async def _stress(
    plan: LabPlan, places: Places, data_dir: Path, progress: Progress
) -> list[StressCell]:
    """Every style and setting takes turns of `TURN` sagas, so a spell of load on the shared
    machine falls on all of them alike (each turn opens the cell's runtime afresh)."""
    settings = stress_settings(plan)
    cells = [(variant, setting) for variant in plan.variants for setting in settings]
    tallies = {(variant, setting.name): Tally() for variant, setting in cells}
    for start in range(0, plan.stress, TURN):
        size = min(TURN, plan.stress - start)
        for variant, setting in cells:
            async with open_lab(variant, setting, places, data_dir / "stress") as lab:
                tally = tallies[(variant, setting.name)]
                await run_batches(lab, tally, start // BATCH, size, plan.seed)
        progress(f"stress: {start + size} of {plan.stress} sagas in each of {len(cells)} cells")
    return [tallies[(variant, setting.name)].cell(variant, setting) for variant, setting in cells]


def _load() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)
