"""`saga-compare versioning`: every arm of both styles under both strategies, on each store.

One deployment per store (``up --chaos`` in a temporary folder, stopped at the end): its own
processes are retired, then each cell starts its version-1 processes, parks the sagas,
upgrades and measures (harness/versioning/cell.py). The arms are paired one per style per
cell — they run side by side, each on its own queue and durables, and never meet:

| workflow versioning | event versioning |
|---|---|
| none | strict |
| patched | tolerant |
| pinned | dual-publish |
| auto-upgrade | stored-upcast |
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.deploy import control, updown
from harness.deploy.topology import Topology
from harness.versioning.cell import CellResult, CellSpec, run_cell
from harness.versioning.upgrade import Strategy
from shared.settings import EventVersioning, StoreKind, WorkflowVersioning
from shared.telemetry import Tracing

PAIRS: tuple[tuple[WorkflowVersioning, EventVersioning], ...] = (
    ("none", "strict"),
    ("patched", "tolerant"),
    ("pinned", "dual-publish"),
    ("auto-upgrade", "stored-upcast"),
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class MatrixOptions:
    stores: tuple[StoreKind, ...]
    per_position: int
    strategies: tuple[Strategy, ...] = ("swap", "rolling")
    pairs: tuple[tuple[WorkflowVersioning, EventVersioning], ...] = PAIRS
    quiet_s: float = 20.0
    bound_s: float = 180.0
    window_s: float = 60.0


class StoreCell(BaseModel):
    model_config = ConfigDict(frozen=True)

    store: str
    cell: CellResult


class Machine(BaseModel):
    model_config = ConfigDict(frozen=True)

    cpus: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    python: str
    system: str


class VersioningDocument(BaseModel):
    """Everything ``versioning.json`` holds."""

    model_config = ConfigDict(frozen=True)

    per_position: int
    strategies: list[str]
    stores: list[str]
    cells: list[StoreCell]
    started_at: float
    finished_at: float
    machine: Machine
    quiet_s: float
    bound_s: float
    window_s: float


async def run_matrix(
    options: MatrixOptions, tracing: Tracing, trace_dir: Path | None, progress: Progress
) -> VersioningDocument:
    load_before = os.getloadavg()
    started = time.time()
    cells: list[StoreCell] = []
    for store in options.stores:
        folder = Path(tempfile.mkdtemp(prefix="saga-versioning-"))
        folder.chmod(0o711)  # an embedded Postgres runs as a user of its own
        try:
            progress(f"starting a deployment ({store.value}, for chaos) in {folder} ...")
            found, _ = await updown.start(folder, store, chaos=True)
            try:
                await _retire_all(found)
                for workflow, events in options.pairs:
                    for strategy in options.strategies:
                        spec = CellSpec(
                            workflow,
                            events,
                            strategy,
                            options.per_position,
                            quiet_s=options.quiet_s,
                            bound_s=options.bound_s,
                            window_s=options.window_s,
                        )
                        progress(f"{store.value}: {spec.name} ...")
                        cell = await run_cell(found, spec, tracing, trace_dir, progress)
                        cells.append(StoreCell(store=store.value, cell=cell))
            finally:
                await updown.stop(folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return VersioningDocument(
        per_position=options.per_position,
        strategies=list(options.strategies),
        stores=[s.value for s in options.stores],
        cells=cells,
        started_at=started,
        finished_at=time.time(),
        machine=Machine(
            cpus=os.cpu_count() or 0,
            load_before=load_before,
            load_after=os.getloadavg(),
            python=platform.python_version(),
            system=platform.platform(terse=True),
        ),
        quiet_s=options.quiet_s,
        bound_s=options.bound_s,
        window_s=options.window_s,
    )


async def _retire_all(found: Topology) -> None:
    """The deployment's own processes go: each cell starts the ones it needs."""
    answer = await control.request(found.control, "members")
    kinds = list(answer.get("members", {}))
    await asyncio.gather(*(control.request(found.control, "retire", kind=k) for k in kinds))
