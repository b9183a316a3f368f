"""`saga-compare versioning`: the versioning matrix (harness/versioning/matrix.py runs it).

Every arm of both styles under both strategies on a deployment of its own per store; writes
``versioning.html``, ``versioning.md`` and ``versioning.json`` (with the swimlanes of a saga
that crossed versions in each cell) and prints the table, or the JSON document with --json.
"""

from __future__ import annotations

import enum
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from harness.cli.console import Rows, note, print_table, say
from harness.cli.files import Workspace, prepare_folder, unique_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import Bound, JsonOpt
from harness.cli.summary import print_json
from harness.versioning.cell import action_count
from harness.versioning.local import failures, matrix_options, run_reported
from harness.versioning.matrix import VersioningDocument
from harness.versioning.upgrade import Strategy
from shared.settings import StoreKind

PER_POSITION = Bound(1, 200)
REPORT_FIX = "pass a folder that can be written (it is created when missing)"


class Stores(enum.StrEnum):
    sqlite = "sqlite"
    postgres = "postgres"
    both = "both"

    @property
    def kinds(self) -> tuple[StoreKind, ...]:
        if self is Stores.both:
            return (StoreKind.SQLITE, StoreKind.POSTGRES)
        return (StoreKind(self.value),)


class Strategies(enum.StrEnum):
    swap = "swap"
    rolling = "rolling"
    both = "both"

    @property
    def names(self) -> tuple[Strategy, ...]:
        if self is Strategies.swap:
            return ("swap",)
        if self is Strategies.rolling:
            return ("rolling",)
        return ("swap", "rolling")


def versioning(
    store: Annotated[
        Stores, typer.Option("--store", help="The services' stores: sqlite, postgres or both.")
    ] = Stores.sqlite,
    orders: Annotated[
        int,
        PER_POSITION.option(
            "--orders", "-n", help="Version-1 sagas parked per position and style."
        ),
    ] = 20,
    strategy: Annotated[
        Strategies, typer.Option("--strategy", help="swap, rolling or both.")
    ] = Strategies.both,
    quiet: Annotated[
        float,
        typer.Option(
            "--quiet",
            min=2.0,
            max=600.0,
            help="Seconds without progress after which a released saga counts as stuck.",
        ),
    ] = 20.0,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=1.0,
            max=3_600.0,
            help="Seconds a rolling upgrade's old release "
            "may take to drain before it is stopped anyway.",
        ),
    ] = 60.0,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Folder for versioning.html, versioning.md, versioning.json, the swimlanes of "
            "each cell's crossing sagas (lanes/) and the log (default: reports/versioning-<time>).",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy version 2 of the saga while version-1 sagas are parked at every step and inside
    a compensation, in every versioning arm of both styles, by swap and by rolling upgrade;
    report who reached the right end, dead letters, stuck sagas and what an operator must do."""
    with user_errors():
        options = matrix_options(
            store.kinds, orders, strategy.names, quiet_s=quiet, window_s=window
        )
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if report_dir is None:
            stem = f"versioning-{stamp}"
            folder, created = unique_folder(Path("reports"), stem, "--report-dir", REPORT_FIX)
        else:
            folder = report_dir
            created = prepare_folder(report_dir, "--report-dir", REPORT_FIX)
    command = shlex.join(["saga-compare", *sys.argv[1:]])
    commit = _commit()  # before the run: what ran, whatever changes in the folder meanwhile
    with user_errors(), Workspace(folder, created, None) as workspace:
        progress = (lambda line: None) if as_json else note
        reported = run_reported(options, folder, workspace.scratch, command, commit, progress)
        doc, page = run_async(reported)
        log = workspace.finish()
    if as_json:
        print_json({"command": command, "commit": commit, **doc.model_dump(mode="json")})
    else:
        print_summary(doc)
        say(f"report: {escape(str(page))}")
    note(f"log: {log}")
    defects = failures(doc)
    if defects:
        note("; ".join(defects))
        raise typer.Exit(1)


def print_summary(doc: VersioningDocument) -> None:
    rows = Rows(
        headers=[
            "store",
            "strategy",
            "style",
            "arm",
            "right end",
            "dead letters",
            "stuck",
            "actions",
            "no v1 left after",
            "v2 sagas",
        ],
        title="version 2 deployed while version-1 sagas run",
    )
    for item in doc.cells:
        for result in item.cell.variants:
            gone = "never" if result.v1_gone_s is None else f"{result.v1_gone_s:.1f}s"
            fresh = f"{sum(1 for f in result.fresh if f.right)}/{len(result.fresh)}"
            stuck = str(sum(result.stuck.values()))
            right = f"{result.right}/{len(result.sagas)}"
            rows.add(
                item.store,
                item.cell.strategy,
                result.variant,
                result.arm,
                right,
                str(result.dead_letters),
                stuck,
                str(action_count(result)),
                gone,
                fresh,
            )
    print_table(Console(), rows)


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    return done.stdout.strip() + (" (uncommitted changes)" if dirty.stdout.strip() else "")


def register(app: typer.Typer) -> None:
    app.command()(versioning)


__all__ = ["register"]
