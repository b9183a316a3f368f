"""`saga-compare`: run the scenario catalogue or a custom order on both styles and compare them.

Exit codes: 0 everything ran and held (a compensated saga is a valid outcome), 1 an
equivalence, invariant or expectation check failed (or a saga got stuck), 2 bad usage or
invalid input (one line on stderr, nothing started, nothing left behind), 128 + N when
signal N (SIGTERM, SIGINT) stopped the run (servers stopped, temporary files removed).
"""

from __future__ import annotations

import sys

import typer

from harness.cli import anomalies as anomalies_cli
from harness.cli import bench as bench_cli
from harness.cli import console, monitor_command, review, runs
from harness.cli import deploy as deploy_cli
from harness.cli import report as report_cli
from harness.cli import traces as traces_cli
from harness.cli import upgrade as upgrade_cli
from harness.cli import versioning as versioning_cli
from harness.cli.console import one_line

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: the rich one shows `<bool>` beside every flag and boxes usage errors.
    rich_markup_mode=None,
    help="Run one order saga as choreography (NATS JetStream) and orchestration (Temporal), "
    "then compare outcomes, state and traces.",
)

runs.register(app)
monitor_command.register(app)
bench_cli.register(app)
report_cli.register(app)
deploy_cli.register(app)
traces_cli.register(app)
upgrade_cli.register(app)
versioning_cli.register(app)
review.register(app)
anomalies_cli.register(app)


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
