"""The review from start to page: run each part, keep its evidence, then write the page.

A part is one run of the review (the catalogue, the benchmark, the anomaly lab, the versioning
matrix, ...): a name for ``--skip``, what it is in a sentence, how it fills its field of the
evidence, and the dimensions that read it. A part that fails (a chaos deployment that cannot
start, a benchmark whose sagas fail) is named on the page and its rows left out; the rest of
the review still stands. A part left out is named too, and a dimension left with no rows says
which. A new part is one more entry in `PARTS`, beside one more dimension provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from harness.bench.run import BenchFailed
from harness.review.gather import (
    Evidence,
    Progress,
    ReviewPlan,
    code_evidence,
    run_anomalies,
    run_bench,
    run_catalogue,
    run_chaos_short,
    run_operability,
    run_versioning,
)
from harness.review.page import ReviewPage, write_page
from shared.definitions import definition_named
from shared.servers import ServerError
from shared.settings import Settings
from shared.validation import InvalidInput

PART_ERRORS = (BenchFailed, ServerError, InvalidInput, TimeoutError, OSError)
"""What a part may fail with and leave the others standing."""


@dataclass(frozen=True)
class Inputs:
    """What every part runs with."""

    plan: ReviewPlan
    settings: Settings
    scratch: Path
    out: Path
    progress: Progress


@dataclass(frozen=True)
class Part:
    name: str
    """The part's name for ``--skip``."""
    about: str
    """What it is, for the page: "the benchmark", "the anomaly lab"."""
    run: Callable[[Inputs, Evidence], Awaitable[None]]
    """Run it and keep its evidence in its field of `Evidence`."""
    dimensions: tuple[str, ...] = ()
    """The dimensions whose rows read its evidence (each says so when it did not run)."""
    alone: bool = True
    """Whether its failure leaves the other parts standing (the catalogue's does not: the
    review is about the sagas it runs)."""


async def _catalogue(i: Inputs, evidence: Evidence) -> None:
    evidence.catalogue = await run_catalogue(i.plan, i.settings, i.scratch, i.out, i.progress)


async def _operability(i: Inputs, evidence: Evidence) -> None:
    evidence.operability = await run_operability(i.settings, i.scratch, i.out, i.progress)


async def _bench(i: Inputs, evidence: Evidence) -> None:
    evidence.bench = await run_bench(i.plan, i.settings, i.scratch, i.out, i.progress)


async def _chaos(i: Inputs, evidence: Evidence) -> None:
    evidence.chaos = await run_chaos_short(i.plan, i.settings, i.out, i.progress)


async def _anomalies(i: Inputs, evidence: Evidence) -> None:
    evidence.anomalies = await run_anomalies(i.plan, i.settings, i.scratch, i.out, i.progress)


async def _versioning(i: Inputs, evidence: Evidence) -> None:
    evidence.versioning = await run_versioning(i.plan, i.settings, i.scratch, i.out, i.progress)


PARTS = (
    Part(
        "catalogue",
        "the catalogue",
        _catalogue,
        ("correctness", "latency", "operability"),
        alone=False,
    ),
    Part("operability", "the operator's paths", _operability, ("operability",), alone=False),
    Part("bench", "the benchmark", _bench, ("throughput",)),
    Part("chaos", "the chaos run", _chaos, ("resilience",)),
    Part("anomalies", "the anomaly lab", _anomalies, ("isolation",)),
    Part("versioning", "the versioning matrix", _versioning, ("change",)),
)
"""The review's runs, in the order they run."""
PART_NAMES = tuple(part.name for part in PARTS)


async def review(
    plan: ReviewPlan,
    settings: Settings,
    scratch: Path,
    out: Path,
    progress: Progress,
    *,
    parts: tuple[str, ...] = PART_NAMES,
) -> tuple[Path, ReviewPage]:
    """Run the parts asked for, then write review.html and review.md into ``out``."""
    code, code_conditions = code_evidence(out)
    evidence = Evidence(out, definition_named(settings.definition), code, code_conditions)
    inputs = Inputs(plan, settings, scratch, out, progress)
    for part in PARTS:
        if part.name not in parts:
            evidence.left_out.append(f"{part.about} (--skip {part.name})")
            _absent(evidence, part, f"left out of this review (--skip {part.name})")
        elif not part.alone:
            await part.run(inputs, evidence)
        else:
            try:
                await part.run(inputs, evidence)
            except PART_ERRORS as error:
                evidence.problems.append(f"{part.about} did not finish ({error})")
                _absent(evidence, part, f"not run: {part.about} did not finish ({error})")
    return write_page(evidence)


def _absent(evidence: Evidence, part: Part, why: str) -> None:
    """Note why the part's dimensions may have no rows (the first reason a dimension met)."""
    for dimension in part.dimensions:
        evidence.absent.setdefault(dimension, why)
