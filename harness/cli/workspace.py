"""Where a command's run works: its report folder, its temporary folder, its exit code."""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, NoReturn

import typer

from harness.cli.console import note
from harness.cli.files import Workspace, prepare_folder, unique_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from shared.settings import Settings, StoreKind
from shared.validation import load_settings

REPORT_FIX = "pass a folder that can be written (it is created when missing)"


def in_workspace(
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
        report, created = report_folder(report_dir, demo=demo)
    with user_errors(), Workspace(report, created, data_dir(settings)) as workspace:
        code = run_async(work(workspace, settings))
        log = workspace.finish()
    note(f"log: {log}")
    raise typer.Exit(code)


def report_folder(report_dir: Path | None, *, demo: bool) -> tuple[Path | None, Path | None]:
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


def data_dir(settings: Settings) -> Path | None:
    """SAGA_DATA_DIR when set: the run's temporary folder goes there instead of the system's."""
    return settings.data_dir if "data_dir" in settings.model_fields_set else None
