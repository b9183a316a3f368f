"""What the review runs, and what it keeps: each run's documents in a folder of its own, with
the conditions it ran under.

- the catalogue on both styles (``catalogue/``: report, results, traces), its flows checked;
- the operator's paths (``operability/``): the two scenarios that end waiting for an operator,
  listed by the monitor's intervention queue, then retried and resolved;
- a short closed benchmark (``bench/``): each style against its engine's floor;
- a short chaos run (``chaos/``): kills under load on a deployment started for it;
- the anomaly lab's matrix (``anomalies/``): each anomaly of concurrent sagas forced with its
  countermeasure off and on, in both styles (the lab's own report, page and JSON);
- the versioning matrix (``versioning/``): version 2 deployed over parked version-1 sagas, in
  every arm of both styles, by swap and by rolling upgrade, on a deployment of its own (the
  experiment's own report, with each cell's swimlanes), and the lines of the change
  (``versioning/lines.md``);
- the code itself (``code-size.md``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.anomalies.kinds import Anomaly
from harness.anomalies.local import run_traced
from harness.anomalies.matrix import LabDocument, LabPlan, Switches, matrix_cells
from harness.anomalies.report import PAGE as LAB_PAGE
from harness.anomalies.report import write_report as write_lab_report
from harness.bench.markdown import bench_markdown
from harness.bench.plots import closed_svg
from harness.bench.run import Bench, BenchPlan, Style
from harness.chaos.experiment import ChaosDocument, ChaosOptions, run_chaos
from harness.chaos.output import write as write_chaos
from harness.compare.conditions import RunConditions, gather
from harness.compare.results import Results, document, save_results
from harness.compare.runner import ScenarioRun
from harness.compare.scenarios import CATALOGUE, get
from harness.deploy import updown
from harness.report.drift import check_flows
from harness.report.health import TraceHealth, trace_health
from harness.report.render import write_report
from harness.report.traces import SagaTrace, load_traces
from harness.review.code_size import PackageSize, markdown, sizes
from harness.session import VARIANTS, Session, open_session
from harness.versioning.lines import BASE, HEAD, PackageChange, numstat, per_package, table
from harness.versioning.local import matrix_options, run_reported
from harness.versioning.matrix import VersioningDocument
from harness.versioning.report import LANES, cell_key
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from shared.contracts import ActionResult
from shared.definition import SagaDefinition
from shared.settings import Settings
from shared.telemetry import HARNESS, configure_tracing

Progress = Callable[[str], None]
WAITING = ("compensation_never_succeeds", "completion_refused")
"""The catalogue's scenarios that end waiting for an operator (one retried, one resolved)."""
SETTLED = (ActionResult.COMPENSATED, ActionResult.RESOLVED)


@dataclass(frozen=True)
class ReviewPlan:
    """Sizes that fit a few minutes on two cores."""

    repeat: int = 1
    bench_orders: int = 40
    bench_concurrency: int = 8
    chaos_orders: int = 40
    chaos_kinds: tuple[str, ...] = ("payment", "worker")
    chaos_rate: float = 4.0
    chaos_seed: int = 7
    anomaly: Anomaly | None = None
    """The one anomaly the lab's matrix forces, off and on, in both styles (None: all five)."""
    versioning_orders: int = 1
    """Version-1 sagas parked per position and style in each cell of the versioning matrix."""
    versioning_quiet_s: float = 10.0
    """Seconds without progress after which a released saga counts as stuck."""
    versioning_window_s: float = 30.0
    """Seconds a rolling upgrade's old release may take to drain."""


@dataclass(frozen=True)
class CatalogueEvidence:
    folder: Path
    results: Results
    traces: list[SagaTrace]
    health: TraceHealth


@dataclass(frozen=True)
class OperatorCheck:
    """One operator action on a saga waiting for one: was it in the queue, did it settle it."""

    variant: str
    scenario: str
    action: str
    listed: bool
    result: str
    ms: float

    @property
    def ok(self) -> bool:
        return self.listed and self.result in {r.value for r in SETTLED}


@dataclass(frozen=True)
class OperabilityEvidence:
    folder: Path
    conditions: RunConditions
    checks: list[OperatorCheck]
    health: TraceHealth


@dataclass(frozen=True)
class BenchEvidence:
    folder: Path
    doc: dict[str, Any]
    conditions: RunConditions


@dataclass(frozen=True)
class ChaosEvidence:
    folder: Path
    doc: ChaosDocument
    conditions: RunConditions


@dataclass(frozen=True)
class LabEvidence:
    """The anomaly lab's matrix, and its report (``page``, relative to the review's folder)."""

    folder: Path
    doc: LabDocument
    conditions: RunConditions
    page: str


@dataclass(frozen=True)
class ChangeLines:
    """The lines version 2's change added and removed per package (``page``: the files)."""

    packages: dict[str, PackageChange]
    page: str


@dataclass(frozen=True)
class VersioningEvidence:
    """The versioning matrix, its report (``page``) and each cell's swimlanes (``lanes``: by
    `cell_key`), relative to the review's folder; the lines of the change when git could count
    them (``lines_missing`` says why not)."""

    folder: Path
    doc: VersioningDocument
    conditions: RunConditions
    page: str
    lanes: dict[str, str]
    lines: ChangeLines | None
    lines_missing: str = ""


@dataclass
class Evidence:
    """Everything the review found, each part None when it was not run or did not finish."""

    out: Path
    definition: SagaDefinition
    code: dict[str, PackageSize]
    code_conditions: RunConditions
    catalogue: CatalogueEvidence | None = None
    operability: OperabilityEvidence | None = None
    bench: BenchEvidence | None = None
    chaos: ChaosEvidence | None = None
    anomalies: LabEvidence | None = None
    versioning: VersioningEvidence | None = None
    problems: list[str] = field(default_factory=list)
    """The parts that were run and did not finish, each in a sentence."""
    left_out: list[str] = field(default_factory=list)
    """The parts the review was told to leave out (``--skip``), each named."""
    absent: dict[str, str] = field(default_factory=dict)
    """Dimension -> why a part it reads did not run (left out, or failed): the page says so
    where the dimension has no rows."""


def _options(scratch: Path) -> dict[str, Any]:
    """Each variant's runtime options: the embedded broker's state in the scratch folder."""
    return {"choreography": {"broker_state_dir": scratch / "nats"}}


async def run_catalogue(
    plan: ReviewPlan, settings: Settings, scratch: Path, out: Path, progress: Progress
) -> CatalogueEvidence:
    """The whole catalogue on both styles, its report written as a demo's is."""
    conditions = gather(store=settings.store.value, definition=settings.definition)
    traces = scratch / "catalogue.jsonl"
    folder = out / "catalogue"
    progress(f"catalogue: {len(CATALOGUE)} scenarios on both styles, {plan.repeat} run(s)")
    async with open_session(
        list(VARIANTS), scratch / "catalogue", traces, settings=settings, options=_options(scratch)
    ) as session:
        runs = await session.run(list(CATALOGUE), repeat=plan.repeat)
    loaded = load_traces(traces)
    results = check_flows(document(runs, conditions), loaded)
    folder.mkdir(parents=True, exist_ok=True)
    save_results(results, folder / "results.json")
    shutil.copyfile(traces, folder / "traces.jsonl")
    health = trace_health(folder / "traces.jsonl")
    write_report(folder, results, loaded, health)
    return CatalogueEvidence(folder, results, loaded, health)


async def run_operability(
    settings: Settings, scratch: Path, out: Path, progress: Progress
) -> OperabilityEvidence:
    """The sagas that wait for an operator: listed by the monitor, then retried or resolved."""
    conditions = gather(store=settings.store.value, definition=settings.definition)
    folder = out / "operability"
    folder.mkdir(parents=True, exist_ok=True)
    traces = folder / "traces.jsonl"
    progress("operability: the sagas that wait for an operator, acted on")
    async with open_session(
        list(VARIANTS),
        scratch / "operability",
        traces,
        settings=settings,
        options=_options(scratch / "op"),
    ) as session:
        runs = await session.run([get(name) for name in WAITING])
        checks = [await _act(session, run) for run in runs]
    return OperabilityEvidence(folder, conditions, checks, trace_health(traces))


async def _act(session: Session, run: ScenarioRun) -> OperatorCheck:
    board = board_for(session.runtimes, MonitorSettings())
    runtime = session.runtimes[run.variant]
    (saga,) = run.sagas
    queue = await board.models[run.variant].interventions()
    listed = saga.saga_id in {view.row.saga_id for view in queue}
    started = time.monotonic()
    if run.scenario.name == WAITING[0]:
        action, done = "retry", await runtime.retry_compensation(saga.saga_id, "review")
    else:
        action, done = "resolve", await runtime.resolve(saga.saga_id, "review", "by the review")
    ms = (time.monotonic() - started) * 1000
    return OperatorCheck(run.variant, run.scenario.name, action, listed, done.result.value, ms)


async def run_bench(
    plan: ReviewPlan, settings: Settings, scratch: Path, out: Path, progress: Progress
) -> BenchEvidence:
    """A short closed benchmark: each style and its floors, traced and untraced."""
    bench_plan = BenchPlan(
        styles=(Style("orchestration", "remote"), Style("choreography")),
        orders=plan.bench_orders,
        concurrency=plan.bench_concurrency,
        cold_start=False,
        warmup=5,
        store=settings.store.value,
    )
    progress(f"bench: {plan.bench_orders} sagas at concurrency {plan.bench_concurrency} per run")
    doc = await Bench(bench_plan, settings, scratch / "bench", progress=progress).run()
    command = (
        f"saga-compare bench --orders {plan.bench_orders} --concurrency"
        f" {plan.bench_concurrency} --no-cold-start (run by saga-compare review)"
    )
    doc["command"] = command
    folder = out / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    (folder / "bench.md").write_text(bench_markdown(doc, command), encoding="utf-8")
    (folder / "bench.svg").write_text(closed_svg(doc), encoding="utf-8")
    conditions = RunConditions.model_validate(doc["conditions"])
    return BenchEvidence(folder, doc, conditions)


async def run_chaos_short(
    plan: ReviewPlan, settings: Settings, out: Path, progress: Progress
) -> ChaosEvidence:
    """Kills under load, on a deployment of its own (started here, stopped after)."""
    conditions = gather(
        store=settings.store.value,
        definition=settings.definition,
        attached="a deployment started for the chaos run",
    )
    options = ChaosOptions(
        variants=list(VARIANTS),
        orders=plan.chaos_orders,
        kinds=list(plan.chaos_kinds),
        seed=plan.chaos_seed,
        rate=plan.chaos_rate,
        downtime=(1.0, 2.0),
        bound_s=120.0,
        baseline=False,
    )
    state = Path(tempfile.mkdtemp(prefix="saga-review-chaos-"))
    try:
        progress(f"chaos: starting a deployment in {state} ...")
        found, _ = await updown.start(
            state, settings.store, chaos=True, definition=settings.definition
        )
        try:
            doc = await run_chaos(options, found, configure_tracing(HARNESS), progress)
        finally:
            await updown.stop(state)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    folder = out / "chaos"
    kinds = ",".join(plan.chaos_kinds)
    command = (
        f"saga-compare chaos --kill {kinds} --orders {plan.chaos_orders} --rate"
        f" {plan.chaos_rate:g} --seed {plan.chaos_seed} --downtime 2 --no-baseline"
        " (run by saga-compare review)"
    )
    write_chaos(doc, folder, command)
    return ChaosEvidence(folder, doc, conditions)


async def run_anomalies(
    plan: ReviewPlan, settings: Settings, scratch: Path, out: Path, progress: Progress
) -> LabEvidence:
    """The lab's deterministic matrix (no stress) on both styles, its report written as
    ``saga-compare anomalies --report-dir`` writes it."""
    chosen = (plan.anomaly,) if plan.anomaly is not None else tuple(Anomaly)
    lab = LabPlan(anomalies=chosen, switches=Switches.both, variants=VARIANTS)
    definitions = ", ".join(dict.fromkeys(setting.definition for _, setting in matrix_cells(lab)))
    conditions = gather(store=settings.store.value, definition=definitions)
    option = f" --anomaly {plan.anomaly}" if plan.anomaly is not None else ""
    command = f"saga-compare anomalies{option} --countermeasures both (run by saga-compare review)"
    progress(f"anomalies: {len(chosen)} of {len(Anomaly)}, countermeasures off and on, both styles")
    traces = scratch / "anomalies.jsonl"
    doc = await run_traced(lab, settings, scratch / "anomalies", traces, progress, command)
    folder = out / "anomalies"
    write_lab_report(folder, doc, traces)
    return LabEvidence(folder, doc, conditions, f"{folder.name}/{LAB_PAGE}")


async def run_versioning(
    plan: ReviewPlan, settings: Settings, scratch: Path, out: Path, progress: Progress
) -> VersioningEvidence:
    """Every arm of both styles by swap and by rolling upgrade on the review's store, on a
    deployment of its own, its report written as ``saga-compare versioning --report-dir``
    writes it; then the lines of the change, counted by git."""
    store = settings.store
    conditions = gather(
        store=store.value,
        definition="v1, then v2",
        attached="a deployment started for the versioning matrix",
    )
    options = matrix_options(
        (store,),
        plan.versioning_orders,
        ("swap", "rolling"),
        quiet_s=plan.versioning_quiet_s,
        window_s=plan.versioning_window_s,
    )
    command = (
        f"saga-compare versioning --store {store.value} -n {plan.versioning_orders} --quiet"
        f" {plan.versioning_quiet_s:g} --window {plan.versioning_window_s:g}"
        " (run by saga-compare review)"
    )
    cells = len(options.pairs) * len(options.strategies)
    progress(f"versioning: {cells} cells, {plan.versioning_orders} saga(s) per position and style")
    folder = out / "versioning"
    doc, page = await run_reported(
        options, folder, scratch / "versioning", command, conditions.code, progress
    )
    lanes = {
        cell_key(item): f"{folder.name}/{LANES}/{cell_key(item)}/report.html"
        for item in doc.cells
        if (folder / LANES / cell_key(item) / "report.html").is_file()
    }
    try:
        lines, missing = change_lines(folder), ""
    except (OSError, subprocess.CalledProcessError) as error:
        lines, missing = None, _why(error)
    page_href = f"{folder.name}/{page.name}"
    return VersioningEvidence(folder, doc, conditions, page_href, lanes, lines, missing)


def change_lines(folder: Path) -> ChangeLines:
    """The change's lines per package, counted by git, its files in ``folder/lines.md``."""
    files = numstat(BASE, HEAD)
    command = f"git log --first-parent --no-merges --numstat {BASE[:7]}..{HEAD[:7]}"
    text = [
        "# The lines of version 2's change",
        "",
        f"`{command} -- shared orchestration choreography` (harness/versioning/lines.py): the"
        " versioning branch's own commits, without the merges of main into it.",
        "",
        *table(files),
        "",
    ]
    (folder / "lines.md").write_text("\n".join(text), encoding="utf-8")
    return ChangeLines(per_package(files), f"{folder.name}/lines.md")


def _why(error: Exception) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        said = (error.stderr or "").strip().splitlines()
        return f"git could not count them ({said[0] if said else f'exit {error.returncode}'})"
    return f"git could not be run ({error})"


def code_evidence(out: Path) -> tuple[dict[str, PackageSize], RunConditions]:
    conditions = gather(store="-", definition="-", activities="-")
    found = sizes()
    (out / "code-size.md").write_text(markdown(found, conditions.code), encoding="utf-8")
    return found, conditions
