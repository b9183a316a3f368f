"""`saga-compare`: run the scenario catalogue or a custom order on both styles and compare them.

Exit codes: 0 everything ran and held (a compensated saga is a valid outcome), 1 an
equivalence, invariant or expectation check failed (or a saga got stuck), 2 bad usage or
invalid input (one line on stderr, nothing started, no state changed).
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness import scenarios as catalogue
from harness.report import load_results, write_report
from harness.results import Results, document, exit_code, latency_medians, save_results
from harness.runner import ScenarioRun
from harness.scenarios import SagaCase, Scenario
from harness.session import VARIANTS, open_session
from harness.traces import load_traces
from shared.catalogue import Catalogue
from shared.errors import InvalidOrder
from shared.runtime import SagaStuck
from shared.seed import DEFAULT_SEED
from shared.servers import ServerError
from shared.validation import parse_order

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Run one order saga as choreography (NATS JetStream) and orchestration (Temporal), "
    "then compare outcomes, state and traces.",
)
out = Console()
err = Console(stderr=True)


class Variant(StrEnum):
    orchestration = "orchestration"
    choreography = "choreography"
    both = "both"

    @property
    def names(self) -> list[str]:
        return list(VARIANTS) if self is Variant.both else [self.value]


VariantOpt = Annotated[Variant, typer.Option("--variant", "-v", help="Which style to run.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document instead.")]
TimeoutOpt = Annotated[
    float,
    typer.Option("--timeout", min=1, help="Seconds a saga may take before it counts as stuck."),
]
ReportOpt = Annotated[
    Path | None, typer.Option("--report-dir", help="Write report.html/.md, results and traces.")
]


def fail(message: str, code: int = 2) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run the command; user-facing failures become one line and an exit code, no traceback."""
    try:
        return asyncio.run(coroutine)
    except (ServerError, InvalidOrder) as error:
        fail(str(error))
    except SagaStuck as error:
        fail(str(error), code=1)
    except KeyboardInterrupt:
        fail("interrupted; servers stopped", code=130)


@app.command()
def scenarios(as_json: JsonOpt = False) -> None:
    """List the scenario catalogue."""
    if as_json:
        rows = [
            {"name": s.name, "title": s.title, "teaches": s.teaches, "sagas": len(s.sagas)}
            for s in catalogue.CATALOGUE
        ]
        print(json.dumps({"scenarios": rows}, indent=2))
        return
    table = Table("scenario", "what it shows", "sagas", "expected")
    for s in catalogue.CATALOGUE:
        table.add_row(s.name, s.teaches, str(len(s.sagas)), _expected_label(s))
    out.print(table)


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
    table = Table("product", "name", "price", "stock")
    for product_id, product in DEFAULT_SEED.products.items():
        table.add_row(
            product_id, product.name, f"{product.price_cents / 100:.2f}", str(product.stock)
        )
    out.print(table)
    out.print(
        "customers and points: " + ", ".join(f"{c} {p}" for c, p in DEFAULT_SEED.points.items())
    )


@app.command()
def run(
    scenario: Annotated[str, typer.Option("--scenario", "-s", help="A name from `scenarios`.")],
    variant: VariantOpt = Variant.both,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    timeout: TimeoutOpt = 90.0,
) -> None:
    """Run one scenario of the catalogue on one variant or both."""
    try:
        chosen = catalogue.get(scenario)
    except KeyError as error:
        fail(str(error.args[0]))
    raise typer.Exit(guarded(_execute([chosen], variant.names, as_json, report_dir, timeout)))


@app.command()
def order(
    file: Annotated[Path, typer.Option("--file", "-f", help="Order JSON (+ optional faults).")],
    variant: VariantOpt = Variant.both,
    as_json: JsonOpt = False,
    report_dir: ReportOpt = None,
    timeout: TimeoutOpt = 90.0,
) -> None:
    """Run a custom order (OrderRequest fields plus an optional `faults` FaultPlan)."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        fail(f"cannot read order file {file}: {error.strerror}")
    try:
        parsed = parse_order(text)
        Catalogue.from_seed(DEFAULT_SEED).check(parsed.order)
    except InvalidOrder as error:
        fail(f"{file}: {error}")
    custom = Scenario(
        name="custom",
        title=f"Custom order {parsed.order.order_id}",
        teaches="A user-supplied order.",
        sagas=(SagaCase(parsed.order, parsed.faults),),
    )
    raise typer.Exit(guarded(_execute([custom], variant.names, as_json, report_dir, timeout)))


MAX_REPEAT = 20


@app.command()
def demo(
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Where the report goes.")
    ] = None,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat", help=f"Runs of the catalogue (1-{MAX_REPEAT}); latencies are medians."
        ),
    ] = 3,
) -> None:
    """Start the embedded servers, run the whole catalogue on both variants, write the report."""
    if not 1 <= repeat <= MAX_REPEAT:
        fail(f"--repeat must be between 1 and {MAX_REPEAT}, got {repeat}")
    folder = report_dir or Path("reports") / time.strftime("demo-%Y%m%d-%H%M%S")
    chosen = list(catalogue.CATALOGUE)
    code = guarded(_execute(chosen, list(VARIANTS), False, folder, 90.0, ui=True, repeat=repeat))
    raise typer.Exit(code)


@app.command()
def bench(
    variant: VariantOpt = Variant.both,
    orders: Annotated[int, typer.Option("--orders", "-n", min=1, help="Sagas per run.")] = 500,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 100,
    as_json: JsonOpt = False,
    report_dir: Annotated[
        Path | None, typer.Option("--report-dir", help="Write bench.json, bench.md, bench.svg.")
    ] = None,
) -> None:
    """Throughput, latency, CPU and memory per variant, against its bare-engine floor."""
    raise typer.Exit(guarded(_bench(variant.names, orders, concurrency, as_json, report_dir)))


async def _bench(
    variants: list[str], orders: int, concurrency: int, as_json: bool, report_dir: Path | None
) -> int:
    from harness.bench import bench_document, bench_markdown, bench_svg, bench_variant
    from harness.runner import new_run_tag

    measurements = []
    with tempfile.TemporaryDirectory(prefix="saga-bench-") as scratch:
        traces = Path(scratch) / "traces.jsonl"
        for name in variants:
            if not as_json:
                err.print(f"{name}: floor, then {orders} sagas traced and untraced ...")
            async with open_session([name], Path(scratch) / "state", traces) as session:
                runtime = session.runtimes[name]
                measurements += await bench_variant(
                    runtime, session.tracing, orders, concurrency, new_run_tag()
                )
    doc = bench_document(measurements)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        (report_dir / "bench.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        (report_dir / "bench.md").write_text(bench_markdown(doc), encoding="utf-8")
        (report_dir / "bench.svg").write_text(bench_svg(doc), encoding="utf-8")
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        _bench_table(doc)
    return 0


def _bench_table(doc: dict[str, Any]) -> None:
    table = Table(
        "variant", "run", "sagas/s", "p50", "p95", "p99", "CPU s", "peak MB", title="benchmark"
    )
    for m in doc["measurements"]:
        run = "bare engine" if m["kind"] == "floor" else ("traced" if m["tracing"] else "untraced")
        table.add_row(
            m["variant"],
            run,
            f"{m['throughput']:.1f}",
            f"{m['p50_ms']:.1f} ms",
            f"{m['p95_ms']:.1f} ms",
            f"{m['p99_ms']:.1f} ms",
            f"{m['cpu_s']:.1f}",
            f"{m['peak_rss_mb']:.0f}",
        )
    out.print(table)
    for variant, v in doc["verdict"].items():
        ratio = "[green]met" if v["ratio_met"] else "[red]MISSED"
        cost = "[green]met" if v["tracing_met"] else "[red]MISSED"
        out.print(
            f"{variant}: {v['ratio_to_floor']:.2f}x its floor (target {v['ratio_target']}x: "
            f"{ratio}[/]); tracing costs {v['tracing_overhead']:.0%} (budget 15%: {cost}[/])"
        )


@app.command()
def report(
    traces: Annotated[Path, typer.Argument(help="An OTLP JSON lines trace file.")],
    report_dir: ReportOpt = None,
) -> None:
    """Rebuild the report from a trace file (and results.json beside it, if present)."""
    if not traces.is_file():
        fail(f"trace file {traces} not found; pass the traces.jsonl a run wrote")
    try:
        loaded = load_traces(traces)
    except (ValueError, KeyError) as error:
        fail(f"{traces} is not an OTLP JSON lines file: {error}")
    if not loaded:
        fail(f"{traces} holds no saga traces (no root span named 'saga <order id>')")
    folder = report_dir or traces.parent
    page = write_report(folder, load_results(traces.parent / "results.json"), loaded)
    out.print(f"report: {page}")


async def _execute(
    chosen: list[Scenario],
    variants: list[str],
    as_json: bool,
    report_dir: Path | None,
    timeout_s: float,
    ui: bool = False,
    repeat: int = 1,
) -> int:
    with tempfile.TemporaryDirectory(prefix="saga-compare-") as scratch:
        folder = report_dir or Path(scratch) / "report"
        folder.mkdir(parents=True, exist_ok=True)
        traces_path = folder / "traces.jsonl"
        traces_path.unlink(missing_ok=True)
        options = {"orchestration": {"ui": ui}} if ui else {}
        total = len(chosen) * len(variants) * repeat
        with _progress(quiet=as_json) as (progress, advance):
            task = progress.add_task("starting servers", total=total)
            async with open_session(
                variants, Path(scratch) / "state", traces_path, **options
            ) as session:
                for name, url in session.ui_urls.items():
                    err.print(f"{name} UI: {url}")
                runs = await session.run(
                    chosen, on_done=lambda r: advance(task, r), timeout_s=timeout_s, repeat=repeat
                )
        doc = document(runs)
        if report_dir is not None:
            save_results(doc, folder / "results.json")
            page = write_report(folder, doc, load_traces(traces_path))
        if as_json:
            print(doc.model_dump_json(indent=2, include={"results", "equivalent", "invariants"}))
        else:
            _summary(runs, doc)
            if report_dir is not None:
                out.print(f"report: {page}")
            for name, url in session.ui_urls.items():
                out.print(f"{name} UI was at {url}")
        return exit_code(doc)


class _progress:
    """A rich progress bar on stderr (silent with --json)."""

    def __init__(self, quiet: bool) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet or not sys.stderr.isatty(),
        )

    def __enter__(self) -> tuple[Progress, Callable[[Any, ScenarioRun], None]]:
        self.bar.__enter__()

        def advance(task: Any, run: ScenarioRun) -> None:
            self.bar.update(task, advance=1, description=f"{run.variant}: {run.scenario.name}")
            if not self.bar.live.is_started:
                err.print(f"done {run.variant}: {run.scenario.name}")

        return self.bar, advance

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def _summary(runs: list[ScenarioRun], doc: Results) -> None:
    """One row per scenario: the outcome (once when both agree), each variant's median saga."""
    table = Table("scenario", "outcome", "orch. ms", "chor. ms", "same", "invariants")
    by_name: dict[str, dict[str, ScenarioRun]] = {}
    for r in runs:
        by_name.setdefault(r.scenario.name, {})[r.variant] = r
    medians = latency_medians(runs)
    for name, pair in by_name.items():
        labels = {v: _outcome_label(r) for v, r in pair.items()}
        outcome = " / ".join(dict.fromkeys(labels.values()))
        timings = [_ms(medians.get((name, v))) for v in VARIANTS]
        diffs = doc.differences.get(name)
        same = "-" if diffs is None else ("[green]yes" if not diffs else "[red]NO")
        held = all(all(r.invariants.values()) for r in runs if r.scenario.name == name)
        table.add_row(name, outcome, *timings, same, "[green]hold" if held else "[red]BROKEN")
    out.print(table)
    for name, diffs in doc.differences.items():
        for line in diffs:
            out.print(f"[red]{name}[/red]: {line}", highlight=False)
    verdict = "[green]all checks held" if exit_code(doc) == 0 else "[red]some checks failed"
    out.print(verdict)


def _outcome_label(run: ScenarioRun) -> str:
    labels = [
        s.outcome.status.value + (f" {s.outcome.reason.value}" if s.outcome.reason else "")
        for s in run.sagas
    ]
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    if len(labels) == 1:
        return labels[0]
    return ", ".join(f"{n}x {label}" for label, n in counts.items())


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def main() -> None:
    app()
