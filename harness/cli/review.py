"""`saga-compare review`: the architecture-review page, from runs sized to take a few minutes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.anomalies.kinds import Anomaly
from harness.chaos.plan import parse_kinds
from harness.cli.anomalies import ALL, chosen_anomalies
from harness.cli.console import note, say
from harness.cli.files import Workspace, prepare_folder, unique_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import REPEAT, Bound, StoreOpt
from harness.cli.workspace import data_dir
from harness.deploy.preflight import check_servers
from harness.review.gather import ReviewPlan
from harness.review.run import PART_NAMES
from harness.review.run import review as run_review
from harness.variants import VARIANTS
from shared.settings import Settings
from shared.validation import InvalidInput, load_settings

REVIEW_ORDERS = Bound(5, 1_000)
"""Sagas per benchmark run or chaos variant in a review: enough to mean something, few
enough to stay a review."""
FIX = "pass a folder that can be written (it is created when missing)"


def review(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder for the page and its evidence (default: reviews/review-<time>)."
        ),
    ] = None,
    repeat: Annotated[int, REPEAT.option("--repeat", help="Runs of the catalogue.")] = 1,
    bench_orders: Annotated[
        int, REVIEW_ORDERS.option("--bench-orders", help="Sagas per closed benchmark run.")
    ] = 40,
    chaos_orders: Annotated[
        int, REVIEW_ORDERS.option("--chaos-orders", help="Orders per style in the chaos run.")
    ] = 40,
    chaos_kill: Annotated[
        str, typer.Option("--chaos-kill", help="Process kinds the chaos run kills.")
    ] = "payment,worker",
    anomaly: Annotated[
        str,
        typer.Option(
            "--anomaly",
            help=f"The anomaly lab's matrix for one anomaly: {', '.join(Anomaly)}; or all.",
        ),
    ] = ALL,
    skip: Annotated[
        list[str] | None,
        typer.Option("--skip", help=f"Leave a part out: {', '.join(PART_NAMES)}."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Run the catalogue, the operator's paths, a short benchmark, a short chaos run, the
    anomaly lab's matrix and the versioning matrix, then write one page comparing both styles
    dimension by dimension (review.html, review.md)."""
    with user_errors():
        kinds = tuple(parse_kinds(chaos_kill))
        anomalies = chosen_anomalies(anomaly)
        unknown = [part for part in skip or [] if part not in PART_NAMES]
        if unknown:
            choices = ", ".join(PART_NAMES)
            raise InvalidInput(
                f"--skip {unknown[0]}: not a part of the review; choose from {choices}"
            )
        settings = load_settings()
        if store is not None:
            settings = settings.model_copy(update={"store": store})
        folder, created = _folder(out)
    plan = ReviewPlan(
        repeat=repeat,
        bench_orders=bench_orders,
        chaos_orders=chaos_orders,
        chaos_kinds=kinds,
        anomaly=anomalies[0] if len(anomalies) == 1 else None,
    )
    parts = tuple(p for p in PART_NAMES if p not in (skip or []))
    with user_errors(), Workspace(folder, created, data_dir(settings)) as workspace:
        code = run_async(_review(plan, settings, workspace, folder, parts))
        log = workspace.finish()
    note(f"log: {log}")
    raise typer.Exit(code)


def _folder(out: Path | None) -> tuple[Path, Path | None]:
    if out is not None:
        return out, prepare_folder(out, "--out", FIX)
    stem = time.strftime("review-%Y%m%d-%H%M%S")
    return unique_folder(Path("reviews"), stem, "review folder", FIX)


async def _review(
    plan: ReviewPlan, settings: Settings, workspace: Workspace, folder: Path, parts: tuple[str, ...]
) -> int:
    await check_servers(settings, list(VARIANTS))
    page_path, page = await run_review(plan, settings, workspace.scratch, folder, note, parts=parts)
    for finding in page.findings:
        if finding.ok is None:
            mark = "-"
        elif finding.ok:
            mark = "[green]yes[/]"
        else:
            mark = "[red]NO[/]" if finding.required else "[yellow]missed[/]"
        say(f"{mark} {escape(finding.dimension)}: {escape(finding.text)}")
    for problem in page.problems:
        say(f"[red]not run[/]: {escape(problem)}")
    for part in page.left_out:
        say(f"left out: {escape(part)}")
    say(f"review: {escape(str(page_path))}")
    return 0 if page.held else 1


def register(app: typer.Typer) -> None:
    """Add `review`."""
    app.command()(review)
