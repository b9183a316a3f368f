"""The harness's composition root: tracing to a file (and OTLP), the variants' runtimes, a run loop.

The session's spans go through the process's one pipeline: the JSON-lines file the report reads
and, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, an OTLP/HTTP receiver, both fed by one batch
processor for the session's lifetime. The harness's own spans name it ``saga-compare-harness``;
the services and the worker that run in this process name themselves (shared/telemetry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare.faulty import Faulty, NoInjector, injected
from harness.compare.runner import ScenarioRun, new_run_tag, run_scenario
from harness.compare.scenarios import Scenario
from harness.deploy import ledger
from harness.deploy.attach import Deployed, open_front_door
from harness.deploy.placements import PlacingRuntime
from harness.variants import VARIANTS
from shared.definitions import definition_named
from shared.faults.sources import PlanBoard
from shared.hooks import NO_HOOKS
from shared.runtime import SagaRuntime
from shared.settings import Settings
from shared.store.factory import VariantStores, open_variant_stores
from shared.telemetry import HARNESS, Tracing, configure_tracing


@dataclass
class Session:
    """Open runtimes by variant, and where this session's traces go."""

    runtimes: dict[str, SagaRuntime]
    plans: dict[str, PlanBoard]
    """Where each variant's processes look for a saga's faults."""
    tracing: Tracing
    traces_path: Path
    stores: VariantStores | None = None
    """Where each variant's stores live; the benchmark opens its floor's stores beside them
    (None when every variant is driven from a deployment's front door)."""
    deployed: Deployed | None = None
    """Variants driven from a deployment's front door: each run is written to its ledger."""

    def driven(self, variant: str) -> Faulty[SagaRuntime]:
        """A variant's runtime with the plan board its processes read."""
        return Faulty(self.runtimes[variant], self.plans[variant])

    @property
    def drivers(self) -> dict[str, Faulty[SagaRuntime]]:
        """Every variant's runtime with its plan board (`driven`)."""
        return {variant: self.driven(variant) for variant in self.runtimes}

    async def run(
        self,
        scenarios: list[Scenario],
        on_done: Callable[[ScenarioRun], None] | None = None,
        timeout_s: float = 90.0,
        repeat: int = 1,
    ) -> list[ScenarioRun]:
        """Every scenario on every open variant, ``repeat`` times over.

        Each run goes variant by variant in catalogue order; K runs interleave the variants
        in time, so a slow spell of a shared machine does not land on one variant alone.
        """
        runs = []
        for number in range(1, repeat + 1):
            # One namespace per scenario and run, the same on every variant.
            tags = {scenario.name: new_run_tag() for scenario in scenarios}
            for scenario in scenarios:
                self._record(tags[scenario.name], scenario)
            for variant in self.runtimes:
                for scenario in scenarios:
                    run = await run_scenario(
                        self._placing(variant, tags[scenario.name]),
                        scenario,
                        run_tag=tags[scenario.name],
                        timeout_s=timeout_s,
                        repeat=number,
                    )
                    runs.append(run)
                    if on_done is not None:
                        on_done(run)
        self.tracing.flush()
        return runs

    def _record(self, tag: str, scenario: Scenario) -> None:
        """The run's namespace in the deployment's ledger, before its first saga starts."""
        if self.deployed is None:
            return
        entry = ledger.Entry(
            tag=tag,
            what=scenario.name,
            variants=[v for v in self.runtimes if v in self.deployed.variants],
            seed=scenario.seed,
            orders=[case.order for case in scenario.sagas],
            tracks_placements=True,
            definition=self.deployed.definition,
        )
        ledger.record(self.deployed.state_dir, entry)

    def _placing(self, variant: str, tag: str) -> Faulty[SagaRuntime]:
        """The variant driven with its faults; on a deployment, its runtime also records each
        saga in the ledger as it is placed."""
        runtime = self.runtimes[variant]
        if self.deployed is not None and variant in self.deployed.variants:
            runtime = PlacingRuntime(runtime, ledger.folder_of(self.deployed.state_dir), tag)
        return Faulty(runtime, self.plans[variant])

    @property
    def ui_urls(self) -> dict[str, str]:
        urls = {v: getattr(r, "ui_url", None) for v, r in self.runtimes.items()}
        return {v: u for v, u in urls.items() if u}


def runtime_factory(variant: str) -> Callable[..., Any]:
    module = importlib.import_module(f"{variant}.runtime")
    factory: Callable[..., Any] = module.open_runtime
    return factory


@asynccontextmanager
async def open_session(
    variants: list[str],
    state_dir: Path,
    traces_path: Path,
    *,
    settings: Settings | None = None,
    deployed: Deployed | None = None,
    inject: bool = True,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[Session]:
    """Start each variant's embedded servers and services; stop them on exit.

    Each variant gets business state of its own on the store the settings choose, and runs
    the saga definition they name. With ``inject`` (the default) the services and worker
    started here run with a fault injector whose plans the session installs; without it (the
    benchmark) they run as production does, with no hooks. A variant of ``deployed`` is driven
    from the front door of that deployment instead (nothing of it is started here; its faults
    go to the deployment's own injector, if it was started for chaos).
    """
    settings = settings or Settings()
    definition = definition_named(settings.definition)
    tracing = configure_tracing(HARNESS)
    attached = deployed.variants if deployed is not None else {}
    with tracing.exporting(jsonl=traces_path):
        async with AsyncExitStack() as stack:
            stores = None
            if any(variant not in attached for variant in variants):
                stores = await stack.enter_async_context(open_variant_stores(settings, state_dir))
            runtimes: dict[str, SagaRuntime] = {}
            plans: dict[str, PlanBoard] = {}
            for variant in variants:
                if variant in attached:
                    assert deployed is not None
                    # The deployment's own definition: the one its processes run.
                    theirs = definition_named(attached[variant].definition)
                    runtimes[variant] = await stack.enter_async_context(
                        open_front_door(variant, attached[variant], tracing, theirs)
                    )
                    plans[variant] = deployed.plans()
                    continue
                assert stores is not None
                board, hooks = injected(variant)
                runtimes[variant] = await stack.enter_async_context(
                    runtime_factory(variant)(
                        state_dir / variant,
                        definition,
                        stores=stores(variant),
                        hooks=hooks if inject else NO_HOOKS,
                        **{"tracing": tracing, **(options or {}).get(variant, {})},
                    )
                )
                plans[variant] = board if inject else NoInjector()
            yield Session(runtimes, plans, tracing, traces_path, stores, deployed)
        # Leaving ``exporting`` flushes: spans that end while the runtimes stop (a cancelled
        # activity) reach the file too.


# VARIANTS is defined in harness.variants (light, for the command line) and re-exported here.
__all__ = ["VARIANTS", "Session", "open_session", "runtime_factory"]
