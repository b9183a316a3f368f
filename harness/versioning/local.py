"""The versioning matrix run from this process and written as its report (HTML, Markdown,
JSON and each cell's swimlanes), and what in it is a defect rather than an arm's cost.

Shared by `saga-compare versioning` and the review's change part, so both run the same
experiment and judge it alike.
"""

from __future__ import annotations

from pathlib import Path

from harness.versioning import report
from harness.versioning.cell import VariantResult
from harness.versioning.matrix import MatrixOptions, Progress, VersioningDocument, run_matrix
from harness.versioning.upgrade import Strategy
from shared.settings import StoreKind
from shared.telemetry import HARNESS, configure_tracing

MIN_BOUND_S = 180.0
"""The least time a cell watches its released sagas (three quiet periods when longer)."""


def matrix_options(
    stores: tuple[StoreKind, ...],
    per_position: int,
    strategies: tuple[Strategy, ...],
    *,
    quiet_s: float,
    window_s: float,
) -> MatrixOptions:
    """The matrix's options, its bound derived from the quiet period."""
    return MatrixOptions(
        stores=stores,
        per_position=per_position,
        strategies=strategies,
        quiet_s=quiet_s,
        bound_s=max(MIN_BOUND_S, 3 * quiet_s),
        window_s=window_s,
    )


async def run_reported(
    options: MatrixOptions,
    folder: Path,
    scratch: Path,
    command: str,
    commit: str,
    progress: Progress,
) -> tuple[VersioningDocument, Path]:
    """Run the matrix (its spans under ``scratch``), then write its report into ``folder``;
    the document and the report's HTML page."""
    tracing = configure_tracing(HARNESS)
    traces = scratch / "traces"
    doc = await run_matrix(options, tracing, traces, progress)
    page = report.write(folder, doc, command, commit, traces)
    return doc, page


def failures(doc: VersioningDocument) -> list[str]:
    """What is a defect, not an arm's cost: an invariant violated, v2 unable to run its own."""
    found = []
    for item in doc.cells:
        for result in item.cell.variants:
            where = f"{item.store} {item.cell.strategy} {result.variant} {result.arm}"
            found += [f"{where}: {defect}" for defect in defects(result)]
    return found


def defects(result: VariantResult) -> list[str]:
    """One style's defects in one cell, each in a few words."""
    found = []
    if result.invariants_violated:
        found.append(f"invariants violated ({', '.join(result.invariants_violated)})")
    if not all(f.right for f in result.fresh):
        found.append("version 2's own sagas did not all end right")
    return found
