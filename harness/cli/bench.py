"""`saga-compare bench`: each style against its bare engine (harness/bench runs it)."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from harness.bench import Bench, BenchFailed, BenchPlan, Style
from harness.cli import console
from harness.cli.console import fail, note
from harness.cli.files import Workspace
from harness.cli.options import (
    CONCURRENCY,
    DEADLINE_S,
    DURATION_S,
    OPEN_SAGAS,
    ORDERS,
    P95_BOUND_MS,
    REPEAT,
    AttachOpt,
    JsonOpt,
    StoreOpt,
    Variant,
    VariantOpt,
    parse_rates,
)
from harness.cli.summary import print_bench, print_json
from harness.cli.workspace import in_workspace
from harness.deploy.attach import resolve
from harness.deploy.preflight import check_servers
from shared.settings import Settings


class Activities(StrEnum):
    remote = "remote"
    local = "local"
    both = "both"

    @property
    def names(self) -> list[str]:
        return ["remote", "local"] if self is Activities.both else [self.value]


class TemporalDb(StrEnum):
    file = "file"
    memory = "memory"


def bench(
    variant: VariantOpt = Variant.both,
    activities: Annotated[
        Activities,
        typer.Option(
            "--activities",
            help="Orchestration's activities: remote (task queue), local (in the workflow's "
            "worker), or both, each against its own floor.",
        ),
    ] = Activities.remote,
    orders: Annotated[int, ORDERS.option("--orders", "-n", help="Sagas per closed run.")] = 300,
    concurrency: Annotated[
        int, CONCURRENCY.option("--concurrency", "-c", help="Sagas in flight (closed loop).")
    ] = 50,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            metavar="R[,R2,...]",
            help="Open model instead: start sagas at R per second (a list sweeps the rates "
            "and finds each style's knee).",
        ),
    ] = None,
    duration: Annotated[
        float, DURATION_S.option("--duration", help="Seconds each open-model rate lasts.")
    ] = 20.0,
    deadline: Annotated[
        float,
        DEADLINE_S.option("--deadline", help="Seconds after its scheduled start a saga may take."),
    ] = 30.0,
    p95_bound: Annotated[
        float,
        P95_BOUND_MS.option(
            "--p95-bound", help="Milliseconds p95 must stay under for a rate to hold."
        ),
    ] = 2000.0,
    repeat: Annotated[
        int, REPEAT.option("--repeat", help="Runs of the whole comparison; figures are medians.")
    ] = 1,
    cold: Annotated[
        bool,
        typer.Option("--cold-start/--no-cold-start", help="Time a fresh process's first saga."),
    ] = True,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="First measure one engine operation at a time (NATS publish, consume, store "
            "transaction, Temporal workflow and activity): the calibration table.",
        ),
    ] = True,
    temporal_db: Annotated[
        TemporalDb,
        typer.Option(
            "--temporal-db",
            help="The embedded Temporal server's state: a SQLite file in WAL mode (default; its "
            "memory stays flat over long runs) or memory (grows with every workflow).",
        ),
    ] = TemporalDb.file,
    as_json: JsonOpt = False,
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Write bench.json, bench.md, bench.svg (and bench-timeline.svg) and the log.",
        ),
    ] = None,
    store: StoreOpt = None,
    attach: AttachOpt = None,
    keep_traces: Annotated[
        bool,
        typer.Option(
            "--keep-traces",
            help="Also write each session's spans to the report folder "
            "(traces-run1-choreography.jsonl, ...): for scripts/hop_anatomy.py.",
        ),
    ] = False,
) -> None:
    """Each style against its bare engine: a closed loop, or an open-model rate sweep."""
    rates = parse_rates(rate)
    if rates and max(rates) * duration > OPEN_SAGAS:
        fail(
            f"--rate {max(rates):g} for --duration {duration:g} starts "
            f"{max(rates) * duration:,.0f} sagas; keep rate x duration <= {OPEN_SAGAS:,}"
        )
    if keep_traces and report_dir is None:
        fail("--keep-traces writes into the report folder; add --report-dir DIR")
    command = "saga-compare " + shlex.join(sys.argv[1:])
    in_workspace(
        report_dir,
        lambda workspace, settings: _bench(
            BenchPlan(
                styles=_styles(variant.names, activities.names),
                orders=orders,
                concurrency=concurrency,
                rates=rates,
                duration_s=duration,
                deadline_s=deadline,
                p95_bound_ms=p95_bound,
                repeat=repeat,
                cold_start=cold,
                calibrate=calibrate,
                store=settings.store.value,
                temporal_db=temporal_db.value,
                keep_traces=str(report_dir) if keep_traces else None,
            ),
            command,
            as_json,
            workspace,
            settings,
            attach,
        ),
        store=store,
    )


def _quiet(line: str) -> None:
    """--json prints one document and nothing else, not even progress."""


def _styles(variants: list[str], activities: list[str]) -> tuple[Style, ...]:
    styles: list[Style] = []
    for name in variants:
        if name == "orchestration":
            styles += [Style(name, config) for config in activities]
        else:
            styles.append(Style(name))
    return tuple(styles)


async def _bench(
    plan: BenchPlan,
    command: str,
    as_json: bool,
    workspace: Workspace,
    settings: Settings,
    attach: Path | None = None,
) -> int:
    from harness.bench.markdown import bench_markdown
    from harness.bench.plots import closed_svg, sweep_svg, timeline_svg

    variants = list(dict.fromkeys(s.variant for s in plan.styles))
    await check_servers(settings, variants)
    deployed = resolve(settings, attach, variants)
    if deployed is not None and plan.cold_start:
        # A cold start times fresh processes of its own: not the deployment's front door.
        plan = replace(plan, cold_start=False)
        if not as_json:
            note("attached: no cold start (it would start processes of its own)")
    progress = _quiet if as_json else note
    bench = Bench(plan, settings, workspace.scratch, progress=progress, deployed=deployed)
    try:
        doc = await bench.run()
    except BenchFailed as error:
        console.error(str(error))
        return 1
    doc["command"] = command
    if workspace.report is not None:
        folder = workspace.report
        (folder / "bench.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        (folder / "bench.md").write_text(bench_markdown(doc, command), encoding="utf-8")
        chart = sweep_svg(doc) if plan.model == "open" else closed_svg(doc)
        (folder / "bench.svg").write_text(chart, encoding="utf-8")
        if plan.model == "open":
            (folder / "bench-timeline.svg").write_text(timeline_svg(doc), encoding="utf-8")
    if as_json:
        print_json(doc)
    else:
        print_bench(doc)
    return 0 if all(m["invariants_held"] is not False for m in doc["measurements"]) else 1


def register(app: typer.Typer) -> None:
    """Add `bench`."""
    app.command()(bench)
