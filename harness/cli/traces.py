"""`saga-compare traces push`: send a run's trace file to an OTLP/HTTP receiver.

The report's ``traces.jsonl`` is OTLP JSON with hex ids; trace UIs take OTLP/HTTP protobuf
(Phoenix answers 415 to JSON). `harness.cli.otlp_push` converts and batches; here the file and
the endpoint are checked first (exit 2 and one line, nothing sent), and a receiver that cannot
be reached or refuses a request is one line too (exit 2: the endpoint is the user's to fix).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.console import fail, say
from harness.cli.guard import user_errors
from harness.cli.otlp_push import PushFailed, check, push, traces_url

traces_app = typer.Typer(
    no_args_is_help=True, help="Work with the trace files runs write (traces.jsonl)."
)


@traces_app.command("push")
def push_command(
    traces: Annotated[
        Path, typer.Argument(metavar="TRACES.jsonl", help="An OTLP JSON lines trace file.")
    ],
    endpoint: Annotated[
        str,
        typer.Option(
            "--endpoint",
            help="The receiver's OTLP/HTTP base URL (http://127.0.0.1:6006 for Phoenix, "
            ":4318 for a collector or Jaeger); /v1/traces is added unless given.",
        ),
    ],
) -> None:
    """Send every span of a trace file to an OTLP/HTTP receiver, as protobuf."""
    with user_errors():
        url = traces_url(endpoint)
    if not traces.is_file():
        fail(f"trace file {traces} not found; pass the traces.jsonl a run wrote")
    try:
        check(traces)
    except (ValueError, UnicodeDecodeError) as error:
        fail(f"{traces} is not an OTLP JSON lines trace file ({error})")
    except OSError as error:
        fail(f"cannot read trace file {traces}: {error.strerror or error}")
    try:
        sent = push(traces, url)
    except PushFailed as error:
        fail(str(error))
    say(
        f"pushed {sent.spans} spans of {sent.traces} traces in {sent.requests} requests "
        f"to {escape(url)}"
    )


def register(app: typer.Typer) -> None:
    """Add `traces` (its one command: `push`)."""
    app.add_typer(traces_app, name="traces")
