"""`saga-compare upgrade`: deploy another saga definition on a running deployment.

A swap stops every process of the old release, then starts the new one; a rolling upgrade
starts the new release beside the old, waits until the sagas open when it began have ended
(or ``--window`` ran out) and stops the old release (harness/versioning/upgrade.py).
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import Annotated

import typer
from rich.markup import escape

from harness.cli.console import note, say
from harness.cli.guard import run as run_async
from harness.cli.guard import user_errors
from harness.cli.options import AttachOpt
from harness.deploy import topology
from harness.deploy.attach import open_front_door
from harness.deploy.attach_default import DEFAULT
from harness.deploy.deployment import CHOREOGRAPHY, ORCHESTRATION
from harness.deploy.topology import Topology
from harness.versioning.upgrade import Arms, Strategy, UpgradeLog, upgrade
from shared.contracts import SagaStatus
from shared.definitions import DEFINITIONS, definition_named
from shared.telemetry import HARNESS, configure_tracing
from shared.validation import InvalidInput, load_settings

POLL_S = 1.0


class StrategyChoice(enum.StrEnum):
    swap = "swap"
    rolling = "rolling"

    @property
    def strategy(self) -> Strategy:
        return "swap" if self is StrategyChoice.swap else "rolling"


def upgrade_command(
    to: Annotated[str, typer.Option("--to", help="The saga definition to deploy (v2).")],
    strategy: Annotated[
        StrategyChoice,
        typer.Option("--strategy", help="swap, or rolling (side by side, then drain)."),
    ],
    arm: Annotated[
        list[str] | None,
        typer.Option(
            "--arm",
            help="Versioning of the new release's processes (repeatable): a workflow setting "
            "(none, patched, pinned, auto-upgrade) and/or an event one (strict, tolerant, "
            "stored-upcast, dual-publish). Default: as the old release runs.",
        ),
    ] = None,
    window: Annotated[
        float,
        typer.Option(
            "--window",
            min=0.0,
            max=86_400.0,
            help="Rolling: the most seconds the old release "
            "may take to drain before it is stopped anyway.",
        ),
    ] = 300.0,
    attach: AttachOpt = None,
) -> None:
    """Deploy saga definition --to on the deployment `up` runs (--attach, or the settings'
    state dir), by swap or rolling upgrade."""
    with user_errors():
        if to not in DEFINITIONS:
            raise InvalidInput(
                f"--to {to!r}: no such saga definition; use one of: {', '.join(DEFINITIONS)}"
            )
        arms = Arms.parse(arm or [])
        settings = load_settings()
        state_dir = (settings.state_dir if attach in (None, DEFAULT) else attach).resolve()
        found = topology.running(state_dir)
        if found.definition == to:
            raise InvalidInput(f"the deployment in {state_dir} runs saga definition {to} already")
        log = run_async(_upgrade(found, to, strategy.strategy, arms, window))
    _print(log)


async def _upgrade(
    found: Topology, to: str, strategy: Strategy, arms: Arms, window: float
) -> UpgradeLog:
    open_before = await _open_sagas(found)

    async def drain() -> None:
        deadline = time.monotonic() + window
        left = open_before
        while left and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
            still = await _open_sagas(found)
            left = {v: ids & still.get(v, set()) for v, ids in left.items()}
            left = {v: ids for v, ids in left.items() if ids}
        if left:
            count = sum(len(ids) for ids in left.values())
            note(f"the window ran out with {count} sagas of the old release open")

    return await upgrade(found, to, strategy, arms, drain=drain, progress=note)


async def _open_sagas(found: Topology) -> dict[str, set[str]]:
    """The sagas whose order is still RUNNING, per style (read from the orders stores)."""
    tracing = configure_tracing(HARNESS)
    open_ids: dict[str, set[str]] = {}
    for variant in (ORCHESTRATION, CHOREOGRAPHY):
        settings = found.settings(variant)
        definition = definition_named(settings.definition)
        async with open_front_door(variant, settings, tracing, definition) as runtime:
            records = await runtime.domain.orders.records()
            open_ids[variant] = {r.saga_id for r in records if r.status is SagaStatus.RUNNING}
    return open_ids


def _print(log: UpgradeLog) -> None:
    gap = ""
    if log.strategy == "swap" and log.new_release_at is not None:
        gap = f" (nothing ran for {log.new_release_at - log.started_at:.1f} s)"
    say(f"upgraded to {escape(log.to)} by {log.strategy}{gap}")
    say(f"  stopped  {escape(', '.join(log.retired)) or '-'}")
    say(f"  started  {escape(', '.join(log.spawned))}")
    if log.current_version_s is not None:
        say(f"  worker version current after {log.current_version_s:.1f} s")


def register(app: typer.Typer) -> None:
    app.command(name="upgrade")(upgrade_command)


__all__ = ["register"]
