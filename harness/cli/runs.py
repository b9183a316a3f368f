"""`saga-compare scenarios|catalogue|run|order|demo`: run sagas on both styles and compare them."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape

from harness.cli import console
from harness.cli.console import Rows, fail, note, out, print_table, say
from harness.cli.files import Workspace
from harness.cli.guard import until_signal, user_errors
from harness.cli.monitor import (
    embedded_monitor,
    monitor_settings,
)
from harness.cli.options import (
    REPEAT,
    AttachOpt,
    JsonOpt,
    ReportOpt,
    StoreOpt,
    TimeoutOpt,
    Variant,
    VariantOpt,
)
from harness.cli.run_summary import RunProgress, print_summary
from harness.cli.summary import print_json
from harness.cli.workspace import in_workspace
from harness.compare import scenarios as catalogue
from harness.compare.conditions import gather
from harness.compare.faulty import NO_INJECTOR
from harness.compare.order_file import read_order_file
from harness.compare.results import Results, document, exit_code, save_results
from harness.compare.runner import ScenarioRun
from harness.compare.scenarios import SagaCase, Scenario
from harness.deploy.attach import Deployed, resolve, went_away
from harness.deploy.deployment import TRACES
from harness.deploy.preflight import check_servers
from harness.report.collect import SpanSources
from harness.report.drift import check_flows
from harness.report.health import trace_health
from harness.report.render import write_report
from harness.report.traces import load_traces
from harness.session import open_session
from harness.variants import VARIANTS
from shared.catalogue import Catalogue
from shared.definitions import definition_named
from shared.errors import InvalidOrder
from shared.runtime import SagaStuck
from shared.seed import DEFAULT_SEED
from shared.servers import port_accepts
from shared.settings import Settings, StoreKind
from shared.validation import MAX_ORDER_FILE_BYTES, InvalidInput, decode_order, load_settings

log = logging.getLogger("saga-compare")


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
    return expected.status.value + (f" ({expected.reason!s})" if expected.reason else "")


def products() -> None:
    """List the products, prices and stock every run starts from."""
    table = Rows(["product", "name", "price", "stock"])
    for product_id, product in DEFAULT_SEED.products.items():
        table.add(
            product_id, escape(product.name), f"{product.price_cents / 100:.2f}", str(product.stock)
        )
    print_table(out, table)
    say("customers and points: " + ", ".join(f"{c} {p}" for c, p in DEFAULT_SEED.points.items()))


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
    with user_errors():
        definition = definition_named(load_settings().definition)
    try:
        parsed = read_order_file(decode_order(data), definition)
        Catalogue.from_seed(DEFAULT_SEED).check(parsed.order)
    except InvalidOrder as error:
        fail(f"{file}: {error}")
    return SagaCase(parsed.order, parsed.faults)


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
    in_workspace(
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
    if deployed is not None and deployed.faults_dir is None:
        faulted = [s.name for s in chosen if any(not case.faults.empty for case in s.sagas)]
        if faulted:
            raise InvalidInput(NO_INJECTOR.format(what=f"scenario {faulted[0]}"))
    conditions = gather(
        store=settings.store.value,
        definition=deployed.definition if deployed is not None else settings.definition,
        attached=deployed.source if deployed is not None else None,
    )
    traces_path = workspace.scratch / "traces.jsonl"
    spans = SpanSources.at_start(deployed.state_dir / TRACES) if deployed is not None else None
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
    except Exception as error:
        gone = await went_away(deployed) if deployed is not None else None
        if gone is not None:
            log.error("the run failed: its deployment went away", exc_info=error)
            console.error(gone)  # what stopped, not the traceback of the call it broke
            return 1
        if isinstance(error, SagaStuck):
            return _stuck(error, as_json)
        raise
    # The session has closed: every span of this process is in the file; an attached run
    # copies in its sagas' spans from the deployment's processes. Each saga's flow is then
    # checked against the spec (a drift fails the run like a broken invariant).
    if spans is not None:
        await spans.collect(traces_path)
    doc = check_flows(document(runs, conditions), load_traces(traces_path))
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
                variants, state, traces_path, settings=settings, deployed=deployed, options=options
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
    traces = folder / "traces.jsonl"
    shutil.copyfile(traces_path, traces)
    return write_report(folder, doc, load_traces(traces), trace_health(traces))


def _stuck(error: SagaStuck, as_json: bool) -> int:
    """A saga that never ended: one line on stderr (and a JSON document with --json); exit 1."""
    if as_json:
        print_json({"error": str(error), "saga_id": error.saga_id, "stuck_in": error.step})
    console.error(str(error))
    return 1


def register(app: typer.Typer) -> None:
    """Add the commands that run sagas: the catalogue, one scenario, an order, the demo."""
    app.command()(scenarios)
    app.command("catalogue")(products)
    app.command()(run)
    app.command()(order)
    app.command()(demo)
