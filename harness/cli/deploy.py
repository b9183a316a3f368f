"""The deployment commands of `saga-compare`: up, down (check and chaos in their modules).

`register(app)` adds them to the command line (harness/cli/app.py). Each reads the settings
once, takes a state dir (``--state-dir``, default ``SAGA_STATE_DIR`` or ``.state``) and
ends, like every command, in one line and an exit code on any error a user can fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli import chaos as chaos_cli
from harness.cli.console import fail, say
from harness.cli.files import prepare_folder
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import AttachOpt, JsonOpt, StoreOpt
from harness.cli.summary import print_json
from harness.deploy import ledger, updown
from harness.deploy.attach import Deployed, open_front_door, resolve
from harness.deploy.attach_default import DEFAULT
from harness.deploy.check import VariantCheck, check_variant, parse_since
from harness.deploy.summary import print_check
from harness.variants import VARIANTS
from shared.definitions import definition_named
from shared.telemetry import HARNESS, configure_tracing
from shared.validation import load_settings

STATE_FIX = "pass a folder that can be written (it is created when missing)"

StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        help="Where the deployment keeps its state, logs and topology.json "
        "(default: SAGA_STATE_DIR, or .state).",
    ),
]


def state_dir_of(given: Path | None) -> Path:
    """The state dir given, or the settings' (SAGA_STATE_DIR), as an absolute path."""
    return (given or load_settings().state_dir).resolve()


ChaosOpt = Annotated[
    bool,
    typer.Option(
        "--chaos",
        help="Start it for chaos: a fault injector in every process (faults reach it out of "
        "band, from this state dir) and real deaths at crash points. Without it the deployment "
        "runs no fault code at all, as production does.",
    ),
]
FreshOpt = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Discard the state dir's stores, Temporal history, NATS streams and ledger, and "
        "start an empty deployment (needed when a store it recorded is gone).",
    ),
]


def up(
    store: StoreOpt = None,
    state_dir: StateDirOpt = None,
    chaos: ChaosOpt = False,
    fresh: FreshOpt = False,
) -> None:
    """Start a deployment (servers, the choreography's processes, the worker), supervised;
    its processes run the saga definition of SAGA_DEFINITION (default v1)."""
    with user_errors():
        settings = load_settings()
        definition_named(settings.definition)  # an unknown name stops here, nothing started
        folder = state_dir_of(state_dir)
        kind = store or settings.store
        prepare_folder(folder, "--state-dir", STATE_FIX)
        start = updown.start(folder, kind, fresh, chaos=chaos, definition=settings.definition)
        found, started = run_async(start)
    updown.print_where(found, started=started)


def down(state_dir: StateDirOpt = None) -> None:
    """Stop the deployment in the state dir; its state stays for the next `up`."""
    with user_errors():
        folder = state_dir_of(state_dir)
        found, left = run_async(updown.stop(folder))
        unlisted = run_async(updown.stop_unlisted(folder)) if found is None else None
    if unlisted is not None:
        say(f"stopped supervisor pid {unlisted} (it ran without topology.json); state kept")
        return
    if found is None:
        say(f"no deployment running in {escape(str(folder))}")
        return
    if left:
        fail(f"still running after stop: {', '.join(left)}; see {found.logs}", code=1)
    say(f"stopped {len(found.processes)} processes; state kept in {escape(str(folder))}")


SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only the runs started since: a duration (30s, 10m, 2h, 1d) or an ISO time.",
    ),
]


def check(attach: AttachOpt = None, since: SinceOpt = None, as_json: JsonOpt = False) -> None:
    """Check a deployment: every saga terminal, every run's invariants held (both variants)."""
    with user_errors():
        settings = load_settings()
        after = parse_since(since)
        deployed = resolve(settings, attach, list(VARIANTS)) or resolve(
            settings, DEFAULT, list(VARIANTS)
        )
        assert deployed is not None
        results = run_async(_check(deployed, after))
    if as_json:
        print_json(
            {
                "source": deployed.source,
                "ok": all(r.ok for r in results),
                "variants": [r.model_dump(mode="json") for r in results],
            }
        )
    else:
        print_check(deployed.source, results)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


async def _check(deployed: Deployed, since: float | None) -> list[VariantCheck]:
    tracing = configure_tracing(HARNESS)
    runs = ledger.entries(deployed.state_dir, since)
    results = []
    for variant, settings in deployed.variants.items():
        definition = definition_named(settings.definition)
        async with open_front_door(variant, settings, tracing, definition) as runtime:
            results.append(await check_variant(runtime, runs, deployed.state_dir))
    return results


def register(app: typer.Typer) -> None:
    """Add the deployment commands to the command line."""
    app.command()(up)
    app.command()(down)
    app.command()(check)
    app.command()(chaos_cli.chaos)


__all__ = ["register"]
