"""`saga-compare chaos`: the command line of a chaos run (harness/chaos/experiment.py runs it)."""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.chaos.experiment import ChaosDocument, ChaosOptions, run_chaos
from harness.chaos.output import json_document, print_chaos, write
from harness.chaos.plan import parse_kinds
from harness.cli.console import note, say
from harness.cli.files import Workspace, prepare_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import (
    AttachOpt,
    Bound,
    JsonOpt,
    ReportOpt,
    StoreOpt,
    Variant,
    VariantOpt,
)
from harness.cli.summary import print_json
from harness.deploy import topology, updown
from harness.deploy.attach_default import DEFAULT
from harness.deploy.topology import Topology
from shared.settings import Settings, StoreKind
from shared.telemetry import HARNESS, configure_tracing
from shared.validation import load_settings

CHAOS_ORDERS = Bound(1, 5_000)
REPORT_FIX = "pass a folder that can be written (it is created when missing)"


def chaos(
    kill: Annotated[
        str,
        typer.Option(
            "--kill",
            help="Process kinds to kill, comma-separated: inventory, payment, points, "
            "shipping, orders, tracker, worker, nats, temporal, postgres.",
        ),
    ],
    variant: VariantOpt = Variant.both,
    orders: Annotated[int, CHAOS_ORDERS.option("--orders", "-n", help="Orders per variant.")] = 200,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            min=0.1,
            max=500.0,
            help="Orders per second (default: half the lower capacity measured fault-free).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the orders and the kills.")] = 7,
    downtime: Annotated[
        float,
        typer.Option(
            "--downtime",
            min=0.5,
            max=120.0,
            help="Longest downtime in seconds; each kill is down between half of it and all.",
        ),
    ] = 4.0,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            min=10.0,
            max=3_600.0,
            help="Seconds after the last order to wait for every saga to end.",
        ),
    ] = 120.0,
    baseline: Annotated[
        bool,
        typer.Option(
            "--baseline/--no-baseline",
            help="Run the orders fault-free first (reference outcomes, measured capacity).",
        ),
    ] = True,
    report_dir: ReportOpt = None,
    as_json: JsonOpt = False,
    attach: AttachOpt = None,
    store: StoreOpt = None,
) -> None:
    """Kill and restart process kinds under load; report what was lost, stuck or violated.

    It runs on the deployment given (--attach), else on the one `up` runs in the settings'
    state dir, else on one it starts for the run and stops after it.
    """
    with user_errors():
        kinds = parse_kinds(kill)
        settings = load_settings()
        options = ChaosOptions(
            variants=variant.names,
            orders=orders,
            kinds=kinds,
            seed=seed,
            rate=rate,
            downtime=(downtime / 2, downtime),
            bound_s=timeout,
            baseline=baseline,
        )
        created = prepare_folder(report_dir, "--report-dir", REPORT_FIX) if report_dir else None
    with user_errors(), Workspace(report_dir, created, None) as workspace:
        doc = run_async(_chaos(options, settings, attach, store, as_json))
        if report_dir is not None:
            write(doc, report_dir, shlex.join(["saga-compare", *sys.argv[1:]]))
        log = workspace.finish()
    if as_json:
        print_json(json_document(doc))
    else:
        print_chaos(doc)
        if report_dir is not None:
            say(f"report: {escape(str(report_dir / 'chaos.md'))}")
    note(f"log: {log}")
    raise typer.Exit(1 if doc.failures else 0)


async def _chaos(
    options: ChaosOptions,
    settings: Settings,
    attach: Path | None,
    store: StoreKind | None,
    quiet: bool,
) -> ChaosDocument:
    tracing = configure_tracing(HARNESS)
    progress = (lambda line: None) if quiet else note
    async with _deployment(settings, attach, store or settings.store, progress) as found:
        return await run_chaos(options, found, tracing, progress)


@asynccontextmanager
async def _deployment(
    settings: Settings, attach: Path | None, store: StoreKind, progress: object
) -> AsyncIterator[Topology]:
    """The deployment given, else the one running in the settings' state dir, else one
    started for this run in a temporary folder (and stopped after it)."""
    if attach is not None:
        yield topology.running((settings.state_dir if attach == DEFAULT else attach).resolve())
        return
    current = topology.read(settings.state_dir.resolve())
    if current is not None and current.supervisor_alive:
        yield current
        return
    folder = Path(tempfile.mkdtemp(prefix="saga-chaos-"))
    try:
        if callable(progress):
            progress(f"starting a deployment ({store.value}) in {folder} ...")
        found, _ = await updown.start(folder, store, chaos=True, definition=settings.definition)
        try:
            yield found
        finally:
            await updown.stop(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
