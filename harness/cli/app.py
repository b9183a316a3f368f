"""`saga-compare`: run the scenario catalogue or a custom order on both styles and compare them.

Exit codes: 0 everything ran and held (a compensated saga is a valid outcome), 1 an
equivalence, invariant or expectation check failed (or a saga got stuck), 2 bad usage or
invalid input (one line on stderr, nothing started, nothing left behind), 128 + N when
signal N (SIGTERM, SIGINT) stopped the run (servers stopped, temporary files removed).

A start imports only the module of the command it runs (`COMMANDS`): the command modules pull
in the variants' runtimes, the monitor, the anomaly lab..., seconds of CPU that a usage error or
a `--help` should not pay. Help and an unknown command see every command, as before.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence

import typer

from harness.cli import console
from harness.cli.argv import with_default_attach
from harness.cli.console import one_line

COMMANDS: dict[str, tuple[str, ...]] = {
    "harness.cli.runs": ("scenarios", "catalogue", "run", "order", "demo"),
    "harness.cli.monitor_command": ("monitor",),
    "harness.cli.bench": ("bench",),
    "harness.cli.report": ("report",),
    "harness.cli.deploy": ("up", "down", "check", "chaos"),
    "harness.cli.upgrade": ("upgrade",),
    "harness.cli.versioning": ("versioning",),
    "harness.cli.review": ("review",),
    "harness.cli.anomalies": ("anomalies",),
    "harness.cli.traces": ("traces",),
}
"""Each command module and the commands its ``register`` adds, in `saga-compare --help` order
(typer lists a command group, `traces`, after the plain commands)."""


def build_app(modules: Iterable[str] = COMMANDS) -> typer.Typer:
    """The command line with the commands of ``modules`` (every command by default)."""
    app = typer.Typer(
        add_completion=False,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        # Plain help: the rich one shows `<bool>` beside every flag and boxes usage errors.
        rich_markup_mode=None,
        help="Run one order saga as choreography (NATS JetStream) and orchestration "
        "(Temporal), then compare outcomes, state and traces.",
    )
    chosen = list(modules)
    for module in chosen:
        register: Callable[[typer.Typer], None] = importlib.import_module(module).register
        register(app)
    if set(chosen) != set(COMMANDS):
        # typer runs an app of one command and no callback as that command itself
        # (`saga-compare bench --help` would read `bench` as an argument): keep a group.
        app.callback()(_group)
    return app


def _group() -> None:
    """Nothing to do before a command: only makes a partial app a group of commands."""


def modules_for(args: Sequence[str]) -> list[str]:
    """The module registering the command ``args`` start with, else every module.

    No command, ``--help`` or an unknown name get them all, so the help lists every command
    and typer's "No such command" error reads as it always did.
    """
    named = args[0] if args else None
    for module, commands in COMMANDS.items():
        if named in commands:
            return [module]
    return list(COMMANDS)


def main() -> None:
    """The `saga-compare` entry point: usage errors are one line too, not typer's box."""
    if len(sys.argv) == 1:
        sys.argv.append("--help")
    sys.argv = with_default_attach(sys.argv)
    app = build_app(modules_for(sys.argv[1:]))
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
