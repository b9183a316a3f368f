"""`saga-compare monitor`: the live page over a deployment, front door only."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.monitor import (
    DEFAULT_PORT,
    attached_monitor,
)
from harness.cli.options import (
    PORT,
    AttachOpt,
)
from harness.deploy import topology
from harness.deploy.attach_default import DEFAULT
from shared.validation import load_settings


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
        temporal_ui = None
        if attach is not None:
            folder = settings.state_dir if attach == DEFAULT else attach
            found = topology.running(folder.resolve())
            settings, temporal_ui = found.front_door(), found.temporal_ui
        code = run_async(attached_monitor(settings, host, port, temporal_ui))
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add `monitor`."""
    app.command("monitor")(monitor_command)
