"""`saga-compare`: run the scenario catalogue or a custom order on both styles and compare them.

Exit codes: 0 everything ran and held (a compensated saga is a valid outcome), 1 an
equivalence, invariant or expectation check failed (or a saga got stuck), 2 bad usage or
invalid input (one line on stderr, nothing started, nothing left behind), 128 + N when
signal N (SIGTERM, SIGINT) stopped the run (servers stopped, temporary files removed).
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from harness.bench import Bench, BenchFailed, BenchPlan, Style
from harness.cli import console
from harness.cli import deploy as deploy_cli
from harness.cli.console import Rows, fail, note, one_line, out, print_table, say
from harness.cli.files import Workspace, prepare_folder, remove_tree, unique_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import until_signal, user_errors
from harness.cli.monitor import (
    DEFAULT_PORT,
    attached_monitor,
    embedded_monitor,
    monitor_settings,
)
from harness.cli.options import (
    CONCURRENCY,
    DEADLINE_S,
    DURATION_S,
    OPEN_SAGAS,
    ORDERS,
    P95_BOUND_MS,
    PORT,
    REPEAT,
    AttachOpt,
    JsonOpt,
    ReportOpt,
    StoreOpt,
    TimeoutOpt,
    Variant,
    VariantOpt,
    parse_rates,
)
from harness.cli.summary import RunProgress, print_bench, print_json, print_summary
from harness.compare import scenarios as catalogue
from harness.compare.results import Results, document, exit_code, save_results
from harness.compare.runner import ScenarioRun
from harness.compare.scenarios import SagaCase, Scenario
from harness.deploy import topology
from harness.deploy.attach import DEFAULT, Deployed, resolve
from harness.deploy.preflight import check_servers
from harness.report.render import load_results, write_report
from harness.report.traces import SagaTrace, load_traces
from harness.session import VARIANTS, open_session
from shared.catalogue import Catalogue
from shared.errors import InvalidOrder
from shared.runtime import SagaStuck
from shared.seed import DEFAULT_SEED
from shared.servers import port_accepts
from shared.settings import Settings, StoreKind
from shared.validation import MAX_ORDER_FILE_BYTES, decode_order, load_settings, parse_order

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: the rich one shows `<bool>` beside every flag and boxes usage errors.
    rich_markup_mode=None,
    help="Run one order saga as choreography (NATS JetStream) and orchestration (Temporal), "
    "then compare outcomes, state and traces.",
)

deploy_cli.register(app)

REPORT_FIX = "pass a folder that can be written (it is created when missing)"
TRACE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, RecursionError)
"""What reading a file that is not an OTLP JSON lines trace file can raise."""


@app.command()
def scenarios(as_json: JsonOpt = False) -> None:
    """List the scenario catalogue."""
    if as_json:
        rows = [
            {"name": s.name, "title": s.title, "teaches": s.teaches, "sagas": len(s.sagas)}
            for s in catalogue.CATALOGUE
        ]
        print_json({"scenarios": rows})
        return
    table = Rows(["scenario", "what it shows", "sagas", "expected"], wrap=1)
    for s in catalogue.CATALOGUE:
        table.add(s.name, escape(s.teaches), str(len(s.sagas)), _expected_label(s))
    print_table(out, table)


def _expected_label(scenario: Scenario) -> str:
    if scenario.expected_counts:
        return ", ".join(f"{n} {status.value}" for status, n in scenario.expected_counts.items())
    expected = scenario.sagas[0].expected
    if expected is None:
        return "?"
    return expected.status.value + (f" ({expected.reason.value})" if expected.reason else "")


@app.command("catalogue")
def products() -> None:
    """List the products, prices and stock every run starts from."""
    table = Rows(["product", "name", "price", "stock"])
    for product_id, product in DEFAULT_SEED.products.items():
        table.add(
            product_id, escape(product.name), f"{product.price_cents / 100:.2f}", str(product.stock)
        )
    print_table(out, table)
    say("customers and points: " + ", ".join(f"{c} {p}" for c, p in DEFAULT_SEED.points.items()))


@app.command()
def run(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="A name from `scenarios`.")],
    variant: VariantOpt = Variant.both,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    timeout: TimeoutOpt = 90.0,
    store: StoreOpt = None,
    attach: AttachOpt = None,
) -> None:
    """Run one scenario of the catalogue on one variant or both."""
    try:
        chosen = catalogue.get(scenario)
    except KeyError as error:
        fail(str(error.args[0]))
    _run_sagas([chosen], variant.names, as_json, report_dir, timeout, store=store, attach=attach)


@app.command()
def order(
    file: Annotated[Path, typer.Option("--file", "-f", help="Order JSON (+ optional faults).")],
    variant: VariantOpt = Variant.both,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    timeout: TimeoutOpt = 90.0,
    store: StoreOpt = None,
    attach: AttachOpt = None,
) -> None:
    """Run a custom order (OrderRequest fields plus an optional `faults` FaultPlan)."""
    case = _read_order(file)
    custom = Scenario(
        name="custom",
        title=f"Custom order {case.order.order_id}",
        teaches="A user-supplied order.",
        sagas=(case,),
    )
    _run_sagas([custom], variant.names, as_json, report_dir, timeout, store=store, attach=attach)


def _read_order(file: Path) -> SagaCase:
    """The order file as a saga case, or one line naming the file, the field and the fix."""
    try:
        with file.open("rb") as stream:
            data = stream.read(MAX_ORDER_FILE_BYTES + 1)
    except OSError as error:
        fail(f"cannot read order file {file}: {error.strerror or error}")
    try:
        parsed = parse_order(decode_order(data))
        Catalogue.from_seed(DEFAULT_SEED).check(parsed.order)
    except InvalidOrder as error:
        fail(f"{file}: {error}")
    return SagaCase(parsed.order, parsed.faults)


@app.command()
def demo(
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where the report goes.")
    ] = None,
    repeat: Annotated[
        int,
        REPEAT.option("--repeat", help="Runs of the catalogue; latencies are their medians."),
    ] = 3,
    store: StoreOpt = None,
    monitor: Annotated[
        bool,
        typer.Option(
            "--monitor",
            help="Serve the live monitor (its address is printed) while the demo runs; "
            "when the catalogue is done it stays up until Ctrl-C.",
        ),
    ] = False,
    attach: AttachOpt = None,
) -> None:
    """Start the embedded servers, run the whole catalogue on both variants, write the report."""
    chosen = list(catalogue.CATALOGUE)
    _run_sagas(
        chosen,
        list(VARIANTS),
        False,
        report_dir,
        90.0,
        demo=True,
        repeat=repeat,
        store=store,
        monitor=monitor,
        attach=attach,
    )


@app.command("monitor")
def monitor_command(
    port: Annotated[
        int, PORT.option("--port", "-p", help="Port to listen on (0: any free port).")
    ] = DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to listen on; beyond loopback, actions need SAGA_MONITOR_TOKEN."
        ),
    ] = "127.0.0.1",
    attach: AttachOpt = None,
) -> None:
    """Serve the live monitor over the deployment the SAGA_ settings name, or the one `up`
    runs (--attach); front door only."""
    with user_errors():
        settings = load_settings()
        if attach is not None:
            folder = settings.state_dir if attach == DEFAULT else attach
            settings = topology.running(folder.resolve()).front_door()
        code = run_async(attached_monitor(settings, host, port))
    raise typer.Exit(code)


class Activities(StrEnum):
    remote = "remote"
    local = "local"
    both = "both"

    @property
    def names(self) -> list[str]:
        return ["remote", "local"] if self is Activities.both else [self.value]


@app.command()
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
) -> None:
    """Each style against its bare engine: a closed loop, or an open-model rate sweep."""
    rates = parse_rates(rate)
    if rates and max(rates) * duration > OPEN_SAGAS:
        fail(
            f"--rate {max(rates):g} for --duration {duration:g} starts "
            f"{max(rates) * duration:,.0f} sagas; keep rate x duration <= {OPEN_SAGAS:,}"
        )
    command = "saga-compare " + shlex.join(sys.argv[1:])
    _in_workspace(
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
                store=settings.store.value,
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


@app.command()
def report(
    traces: Annotated[
        Path, typer.Argument(metavar="TRACES.jsonl", help="An OTLP JSON lines trace file.")
    ],
    report_dir: Annotated[
        Path | None,
        typer.Option(
            "--report-dir",
            help="Folder for report.html and report.md, with a copy of the trace file and "
            "results.json (default: the trace file's folder).",
        ),
    ] = None,
) -> None:
    """Rebuild report.html and report.md from a trace file (and results.json beside it)."""
    loaded = _read_traces(traces)
    results_path = traces.parent / "results.json"
    results = _read_results(results_path)
    folder = report_dir or traces.parent
    with user_errors():
        created = prepare_folder(folder, "--report-dir", REPORT_FIX)
    try:
        page = write_report(folder, results, loaded)
        _copy_beside(traces, folder / "traces.jsonl")
        if results is not None:
            _copy_beside(results_path, folder / "results.json")
    except OSError as error:
        remove_tree(created)
        fail(f"cannot write the report into {folder} ({error.strerror or error}); {REPORT_FIX}")
    say(f"report: {escape(str(page))}")


def _read_traces(traces: Path) -> list[SagaTrace]:
    if not traces.is_file():
        fail(f"trace file {traces} not found; pass the traces.jsonl a run wrote")
    try:
        loaded = load_traces(traces)
    except OSError as error:
        fail(f"cannot read trace file {traces}: {error.strerror or error}")
    except TRACE_ERRORS as error:
        fail(
            f"{traces} is not an OTLP JSON lines trace file ({_why(error)}); "
            "pass the traces.jsonl a run wrote"
        )
    if not loaded:
        fail(f"{traces} holds no saga traces (no root span named 'saga <variant> <order id>')")
    return loaded


def _read_results(path: Path) -> Results | None:
    """results.json beside the traces, if there is one and it is a results document."""
    try:
        return load_results(path)
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")
    except TRACE_ERRORS as error:
        fail(f"{path} is not a results.json a run wrote ({_why(error)}); move it away and retry")


def _why(error: BaseException) -> str:
    """A short reason: a ValueError's message names the line; other errors mean a wrong shape."""
    if isinstance(error, ValueError):
        return one_line(str(error))[:200]
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return "a line does not have the OTLP TracesData shape"


def _copy_beside(source: Path, target: Path) -> None:
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)


def _run_sagas(
    chosen: list[Scenario],
    variants: list[str],
    as_json: bool,
    report_dir: Path | None,
    timeout_s: float,
    *,
    demo: bool = False,
    repeat: int = 1,
    store: StoreKind | None = None,
    monitor: bool = False,
    attach: Path | None = None,
) -> NoReturn:
    """Run scenarios on the variants, compare them, and exit with the verdict's code."""
    if monitor:
        with user_errors():
            monitor_settings()  # a bad SAGA_MONITOR_ variable stops the demo before it starts
    _in_workspace(
        report_dir,
        lambda workspace, settings: _execute(
            chosen,
            variants,
            as_json,
            workspace,
            settings,
            timeout_s,
            ui=demo,
            repeat=repeat,
            monitor=monitor,
            attach=attach,
        ),
        demo=demo,
        store=store,
    )


def _in_workspace(
    report_dir: Path | None,
    work: Callable[[Workspace, Settings], Coroutine[Any, Any, int]],
    *,
    demo: bool = False,
    store: StoreKind | None = None,
) -> NoReturn:
    """Run the work in a workspace that only a finished run leaves behind; exit with its code."""
    with user_errors():
        settings = load_settings()
        if store is not None:
            settings = settings.model_copy(update={"store": store})
        report, created = _report_folder(report_dir, demo=demo)
    with user_errors(), Workspace(report, created, _data_dir(settings)) as workspace:
        code = run_async(work(workspace, settings))
        log = workspace.finish()
    note(f"log: {log}")
    raise typer.Exit(code)


def _report_folder(report_dir: Path | None, *, demo: bool) -> tuple[Path | None, Path | None]:
    """The report folder (validated, created) and the outermost folder creating it added.

    A demo without ``--report-dir`` gets a new folder under ``reports/`` named by its start
    time, with a suffix when another run took that name in the same second.
    """
    if report_dir is not None:
        return report_dir, prepare_folder(report_dir, "--report-dir", REPORT_FIX)
    if not demo:
        return None, None
    stem = time.strftime("demo-%Y%m%d-%H%M%S")
    fix = "run from a folder that can be written, or pass --report-dir"
    return unique_folder(Path("reports"), stem, "report folder", fix)


def _data_dir(settings: Settings) -> Path | None:
    """SAGA_DATA_DIR when set: the run's temporary folder goes there instead of the system's."""
    return settings.data_dir if "data_dir" in settings.model_fields_set else None


def _runtime_options(scratch: Path, *, ui: bool) -> dict[str, dict[str, Any]]:
    """Every server's state inside the run's temporary folder, so one removal cleans up."""
    options: dict[str, dict[str, Any]] = {"choreography": {"broker_state_dir": scratch / "nats"}}
    if ui:
        options["orchestration"] = {"ui": True}
    return options


async def _execute(
    chosen: list[Scenario],
    variants: list[str],
    as_json: bool,
    workspace: Workspace,
    settings: Settings,
    timeout_s: float,
    ui: bool = False,
    repeat: int = 1,
    monitor: bool = False,
    attach: Path | None = None,
) -> int:
    await check_servers(settings, variants)
    deployed = resolve(settings, attach, variants)
    traces_path = workspace.scratch / "traces.jsonl"
    try:
        runs = await _run_all(
            chosen,
            variants,
            as_json,
            workspace,
            settings,
            traces_path,
            timeout_s,
            ui,
            repeat,
            monitor,
            deployed,
        )
    except SagaStuck as error:
        return _stuck(error, as_json)
    doc = document(runs)
    page = _write_outputs(workspace.report, doc, traces_path)
    if as_json:
        print_json(doc.model_dump(mode="json", include={"results", "equivalent", "invariants"}))
    else:
        print_summary(runs, doc)
        if page is not None:
            say(f"report: {escape(str(page))}")
    return exit_code(doc)


async def _run_all(
    chosen: list[Scenario],
    variants: list[str],
    as_json: bool,
    workspace: Workspace,
    settings: Settings,
    traces_path: Path,
    timeout_s: float,
    ui: bool,
    repeat: int,
    monitor: bool = False,
    deployed: Deployed | None = None,
) -> list[ScenarioRun]:
    """Every scenario on every variant, with progress on stderr; servers stop on the way out.

    With ``monitor`` the live page runs beside them, and stays up after the last saga until
    Ctrl-C (the summary and the report follow).
    """
    options = _runtime_options(workspace.scratch, ui=ui)
    state = workspace.scratch / "state"
    with RunProgress(quiet=as_json) as (bar, advance):
        task = bar.add_task("starting servers", total=len(chosen) * len(variants) * repeat)
        async with (
            open_session(
                variants, state, traces_path, settings=settings, deployed=deployed, **options
            ) as session,
            AsyncExitStack() as page,
        ):
            for name, url in session.ui_urls.items():
                await _announce_ui(name, url)
            if monitor:
                await page.enter_async_context(embedded_monitor(session.runtimes))
            runs = await session.run(
                chosen, on_done=lambda r: advance(task, r), timeout_s=timeout_s, repeat=repeat
            )
            if monitor:
                note("the catalogue has run; the monitor stays up until Ctrl-C, then the summary")
                await until_signal()
            return runs


async def _announce_ui(name: str, url: str, deadline_s: float = 15.0) -> None:
    """Print a Web UI's address once it answers there (the server starts it a moment later)."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    end = time.monotonic() + deadline_s
    while not await port_accepts(int(port), host) and time.monotonic() < end:
        await asyncio.sleep(0.1)
    say(f"{name} UI: {url} (up until the run ends)")


def _write_outputs(folder: Path | None, doc: Results, traces_path: Path) -> Path | None:
    """results.json, traces.jsonl and the report into the report folder, if there is one."""
    if folder is None:
        return None
    save_results(doc, folder / "results.json")
    shutil.copyfile(traces_path, folder / "traces.jsonl")
    return write_report(folder, doc, load_traces(folder / "traces.jsonl"))


def _stuck(error: SagaStuck, as_json: bool) -> int:
    """A saga that never ended: one line on stderr (and a JSON document with --json); exit 1."""
    if as_json:
        print_json({"error": str(error), "saga_id": error.saga_id, "stuck_in": error.step})
    console.error(str(error))
    return 1


def main() -> None:
    """The `saga-compare` entry point: usage errors are one line too, not typer's box."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")
    sys.argv = deploy_cli.with_default_attach(sys.argv)
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as usage:
        context = getattr(usage, "ctx", None)
        hint = f"; see `{context.command_path} --help`" if context is not None else ""
        console.error(one_line(usage.format_message()).rstrip(".") + hint)
        sys.exit(usage.exit_code)
    except typer.Abort:
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
