"""Front-door mode: drive a running deployment instead of starting services of our own.

A command is attached when given ``--attach [STATE_DIR]`` (a deployment from ``saga-compare
up``: its topology file names each variant's settings) or when the settings name the servers
themselves (``SAGA_NATS_URL`` for the choreography, ``SAGA_TEMPORAL_ADDRESS`` for the
orchestration: a compose deployment). Then the harness only starts sagas and observes them:
the choreography through its command subjects and notices (choreography/front_door.py), the
orchestration through a Temporal client on the deployment's task queue. Final state is read
from the services' own stores (the variant's SQLite files, or its Postgres schemas).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from choreography.host import ChoreographySettings
from choreography.runtime import open_runtime as choreography
from harness.compare.faulty import NoInjector
from harness.deploy import topology
from harness.deploy.attach_default import DEFAULT
from harness.deploy.preflight import check_servers
from orchestration.runtime import open_runtime as orchestration
from orchestration.server import TemporalSettings
from shared.definition import SagaDefinition
from shared.faults.deployment import PLANS
from shared.faults.sources import DirectoryPlans, PlanBoard
from shared.runtime import SagaRuntime
from shared.settings import Settings, StoreKind
from shared.store.factory import open_stores
from shared.telemetry import Tracing
from shared.validation import InvalidInput


@dataclass(frozen=True)
class Deployed:
    """The settings of each variant a command drives from the front door, and whose they are."""

    variants: dict[str, Settings]
    source: str
    state_dir: Path
    """Where runs on it keep their ledger (harness/deploy/ledger.py)."""
    supervised: bool = False
    """Run by `saga-compare up` in ``state_dir`` (else: servers the settings name)."""
    faults_dir: Path | None = None
    """Where its processes read sagas' plans: set only for a deployment started for chaos."""

    @property
    def definition(self) -> str:
        """The saga definition its processes run (what a run on it is judged by), which an
        upgrade may have changed since the harness's own settings were read."""
        return next(iter(self.variants.values())).definition

    def plans(self) -> PlanBoard:
        """Where a saga's faults go before it starts (refused without an injector)."""
        if self.faults_dir is None:
            return NoInjector()
        return DirectoryPlans(self.faults_dir / PLANS)


def names_servers(settings: Settings, variant: str) -> bool:
    """Whether the settings point this variant at servers someone else runs."""
    if variant == "choreography":
        return bool(settings.nats_url)
    return bool(settings.temporal_address)


def resolve(settings: Settings, attach: Path | None, variants: list[str]) -> Deployed | None:
    """The deployment to drive, or None when the command runs everything itself."""
    if attach is not None:
        state_dir = (settings.state_dir if attach == DEFAULT else attach).resolve()
        found = topology.running(state_dir)
        variant_settings = {v: found.settings(v) for v in variants}
        source = f"the deployment in {state_dir}"
        return Deployed(
            variant_settings, source, state_dir, supervised=True, faults_dir=found.faults_dir
        )
    named = {v: settings.for_variant(v) for v in variants if names_servers(settings, v)}
    if not named:
        return None
    for variant, chosen in named.items():
        if chosen.store is StoreKind.POSTGRES and not chosen.postgres_url:
            raise InvalidInput(
                f"the {variant} deployment's stores are on Postgres: set SAGA_POSTGRES_URL to "
                "its server (the harness reads the services' own schemas)"
            )
    return Deployed(named, "the servers the SAGA_ settings name", settings.state_dir.resolve())


async def went_away(deployed: Deployed) -> str | None:
    """One line saying that the deployment a run drives stopped answering, and where to look;
    None while it still runs (the run's failure is then its own)."""
    if deployed.supervised:
        try:
            found = topology.read(deployed.state_dir)
        except InvalidInput:
            found = None
        if found is not None and found.supervisor_alive:
            return None
        logs = found.logs if found is not None else deployed.state_dir / "logs"
        return (
            f"{deployed.source} went away during the run (its supervisor is not running); "
            f"see its logs in {logs}/ and start it again with "
            f"`saga-compare up --state-dir {deployed.state_dir}`"
        )
    for variant, settings in deployed.variants.items():
        try:
            await check_servers(settings, [variant])
        except InvalidInput as gone:
            return f"the {variant} servers stopped answering during the run: {gone}"
    return None


@asynccontextmanager
async def open_front_door(
    variant: str, settings: Settings, tracing: Tracing, definition: SagaDefinition
) -> AsyncIterator[SagaRuntime]:
    """One variant's front door over the deployment's servers and stores."""
    async with AsyncExitStack() as stack:
        stores = await stack.enter_async_context(open_stores(settings))
        runtime: Any
        if variant == "choreography":
            runtime = choreography(
                settings.data_dir,
                definition,
                settings=ChoreographySettings.from_settings(settings),
                services=(),
                stores=stores,
                tracing=tracing,
            )
        else:
            runtime = orchestration(
                settings.data_dir,
                definition,
                settings=TemporalSettings.from_settings(settings),
                run_worker=False,
                stores=stores,
                tracing=tracing,
            )
        yield await stack.enter_async_context(runtime)
