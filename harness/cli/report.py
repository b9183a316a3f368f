"""`saga-compare report`: rebuild the report from a trace file."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.console import fail, one_line, say
from harness.cli.files import prepare_folder, remove_tree
from harness.cli.guard import user_errors
from harness.cli.workspace import REPORT_FIX
from harness.compare.results import Results
from harness.report.health import trace_health
from harness.report.render import load_results, write_report
from harness.report.traces import SagaTrace, load_traces

TRACE_ERRORS = (ValueError, KeyError, TypeError, AttributeError, RecursionError)
"""What reading a file that is not an OTLP JSON lines trace file can raise."""


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
        page = write_report(folder, results, loaded, trace_health(traces))
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


def register(app: typer.Typer) -> None:
    """Add `report`."""
    app.command()(report)
