"""The review from start to page: gather each part's evidence, then write the page.

A part that fails (a chaos deployment that cannot start, a benchmark whose sagas fail) is
named on the page and its rows left out; the rest of the review still stands.
"""

from __future__ import annotations

from pathlib import Path

from harness.bench.run import BenchFailed
from harness.review.gather import (
    Evidence,
    Progress,
    ReviewPlan,
    code_evidence,
    run_bench,
    run_catalogue,
    run_chaos_short,
    run_operability,
)
from harness.review.page import ReviewPage, write_page
from shared.definitions import definition_named
from shared.servers import ServerError
from shared.settings import Settings
from shared.validation import InvalidInput

PART_ERRORS = (BenchFailed, ServerError, InvalidInput, TimeoutError, OSError)
"""What a part may fail with and leave the others standing."""


async def review(
    plan: ReviewPlan,
    settings: Settings,
    scratch: Path,
    out: Path,
    progress: Progress,
    *,
    parts: tuple[str, ...] = ("catalogue", "operability", "bench", "chaos"),
) -> tuple[Path, ReviewPage]:
    """Run the parts asked for, then write review.html and review.md into ``out``."""
    code, code_conditions = code_evidence(out)
    evidence = Evidence(out, definition_named(settings.definition), code, code_conditions)
    if "catalogue" in parts:
        evidence.catalogue = await run_catalogue(plan, settings, scratch, out, progress)
    if "operability" in parts:
        evidence.operability = await run_operability(settings, scratch, out, progress)
    if "bench" in parts:
        try:
            evidence.bench = await run_bench(plan, settings, scratch, out, progress)
        except PART_ERRORS as error:
            evidence.problems.append(f"the benchmark did not finish ({error})")
    if "chaos" in parts:
        try:
            evidence.chaos = await run_chaos_short(plan, settings, out, progress)
        except PART_ERRORS as error:
            evidence.problems.append(f"the chaos run did not finish ({error})")
    return write_page(evidence)
