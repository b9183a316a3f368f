"""`saga-compare anomalies`: the anomaly lab's matrix (and stress mode), printed and reported.

Each anomaly's interleaving runs on each style with its countermeasure off and on, on runtimes
this command starts (embedded servers, the stores the settings choose) in a temporary folder;
``--stress N`` adds N sagas of a seeded random mix per style and setting. Exit 0 when each
anomaly shows with its countermeasure off (in the styles where it can happen) and none with it
on, and the history checker and the invariants agree everywhere; 1 otherwise.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.anomalies.kinds import ABOUT, Anomaly
from harness.anomalies.lab import Places
from harness.anomalies.matrix import LabDocument, LabPlan, Switches, run_lab
from harness.anomalies.report import document_json, verdict, write_report
from harness.cli.console import Rows, note, out, print_table, say
from harness.cli.files import Workspace, prepare_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import Bound, JsonOpt, ReportOpt, StoreOpt, Variant, VariantOpt
from harness.cli.summary import print_json
from shared.postgres_server import EmbeddedPostgres
from shared.settings import Settings, StoreKind
from shared.store import sqlite_stores
from shared.store.postgres import postgres_stores
from shared.telemetry import HARNESS, configure_tracing
from shared.validation import InvalidInput, load_settings

STRESS = Bound(0, 10_000)
"""Sagas per stress cell: 10,000 per cell already takes hours on a laptop."""
ALL = "all"
REPORT_FIX = "pass a folder that can be written (it is created when missing)"


def anomalies(
    anomaly: Annotated[
        str,
        typer.Option(
            "--anomaly",
            help=f"Which anomaly: {', '.join(a.value for a in Anomaly)}, or all.",
        ),
    ] = ALL,
    countermeasures: Annotated[
        Switches,
        typer.Option(
            "--countermeasures", help="The cells with the countermeasures off, on, or both."
        ),
    ] = Switches.both,
    variant: VariantOpt = Variant.both,
    stress: Annotated[
        int,
        STRESS.option("--stress", help="Sagas per style and setting in stress mode (0: none)."),
    ] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the stress mix.")] = 7,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    store: StoreOpt = None,
) -> None:
    """The anomaly lab: five anomalies of concurrent sagas, each with its countermeasure off
    and on, in both styles; the matrix, and with --stress the rates under a random mix."""
    with user_errors():
        plan = LabPlan(
            anomalies=_chosen(anomaly),
            switches=countermeasures,
            variants=tuple(variant.names),
            stress=stress,
            seed=seed,
        )
        settings = load_settings()
        if store is not None:
            settings = settings.model_copy(update={"store": store})
        created = prepare_folder(report_dir, "--report-dir", REPORT_FIX) if report_dir else None
    command = shlex.join(["saga-compare", *sys.argv[1:]])
    with user_errors(), Workspace(report_dir, created, None) as workspace:
        doc = run_async(_run(plan, settings, workspace, command, quiet=as_json))
        if report_dir is not None:
            page = write_report(report_dir, doc, workspace.scratch / "traces.jsonl")
        log = workspace.finish()
    if as_json:
        print_json(document_json(doc))
    else:
        print_lab(doc)
        if report_dir is not None:
            say(f"report: {escape(str(page))}")
    note(f"log: {log}")
    raise typer.Exit(0 if doc.ok else 1)


def _chosen(anomaly: str) -> tuple[Anomaly, ...]:
    if anomaly == ALL:
        return tuple(Anomaly)
    try:
        return (Anomaly(anomaly),)
    except ValueError:
        names = ", ".join(a.value for a in Anomaly)
        raise InvalidInput(
            f"--anomaly {anomaly!r}: no such anomaly; use one of: {names}, all"
        ) from None


async def _run(
    plan: LabPlan, settings: Settings, workspace: Workspace, command: str, quiet: bool
) -> LabDocument:
    tracing = configure_tracing(HARNESS)
    progress = (lambda line: None) if quiet else note
    with tracing.exporting(jsonl=workspace.scratch / "traces.jsonl"):
        async with _places(settings, workspace.scratch) as places:
            return await run_lab(
                plan, places, workspace.scratch / "state", tracing, progress, command
            )


@asynccontextmanager
async def _places(settings: Settings, scratch: Path) -> AsyncIterator[Places]:
    """The stores of each lab runtime: SQLite files in the run's folder, or Postgres schemas."""
    if settings.store is StoreKind.SQLITE:
        yield lambda variant, name: sqlite_stores(scratch / "stores" / variant / name)
    elif settings.postgres_url:
        url = settings.postgres_url
        yield lambda variant, name: postgres_stores(url, schema_prefix=_schema(variant, name))
    else:
        async with EmbeddedPostgres(state_dir=scratch / "postgres") as server:
            yield lambda variant, name: postgres_stores(
                server.url, schema_prefix=_schema(variant, name)
            )


def _schema(variant: str, name: str) -> str:
    return f"anomalies_{variant[:5]}_{name}_"


def print_lab(doc: LabDocument) -> None:
    """The matrix, then the stress figures (if any) and the verdict."""
    _print_matrix(doc)
    if doc.stress:
        _print_stress(doc)
    say("as expected" if doc.ok else "NOT as expected: see the cells marked UNEXPECTED")


def _print_matrix(doc: LabDocument) -> None:
    variants = list(dict.fromkeys(cell.variant for cell in doc.matrix))
    table = Rows(["anomaly", "services run with", *variants], title="anomaly lab")
    rows: dict[tuple[Anomaly, str], dict[str, str]] = {}
    for cell in doc.matrix:
        mark = "" if cell.as_expected else " (UNEXPECTED)"
        shown = verdict(cell) + (f" {','.join(cell.involved)}" if cell.involved else "") + mark
        rows.setdefault((cell.anomaly, cell.setting), {})[cell.variant] = shown
    for (anomaly, setting), cells in rows.items():
        number = ABOUT[anomaly].number
        table.add(f"{number} {anomaly.value}", setting, *(cells.get(v, "-") for v in variants))
    print_table(out, table)


def _print_stress(doc: LabDocument) -> None:
    numbers = [str(ABOUT[a].number) for a in Anomaly]
    table = Rows(
        ["style", "services run with", *numbers, "p50 ms", "p95 ms", "sagas/s"],
        title=f"anomalies per 10,000 sagas ({doc.stress_sagas} per cell, seed {doc.seed})",
    )
    for cell in doc.stress:
        figures = [f"{cell.per_10k(a):g}" for a in Anomaly]
        latency = _latency(cell.p50_ms, cell.p95_ms)
        table.add(cell.variant, cell.setting, *figures, *latency, f"{cell.throughput_per_s:g}")
    print_table(out, table)


def _latency(p50: float | None, p95: float | None) -> list[str]:
    return [f"{p50:g}" if p50 is not None else "-", f"{p95:g}" if p95 is not None else "-"]


def register(app: typer.Typer) -> None:
    """Add `anomalies`."""
    app.command()(anomalies)
