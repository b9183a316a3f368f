"""The harness's composition root: tracing to a file (and OTLP), the variants' runtimes, a run loop.

The session's spans go through the process's one pipeline: the JSON-lines file the report reads
and, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, an OTLP/HTTP receiver, both fed by one batch
processor for the session's lifetime. The harness's own spans name it ``saga-compare-harness``;
the services and the worker that run in this process name themselves (shared/telemetry.py).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compare.runner import ScenarioRun, new_run_tag, run_scenario
from harness.compare.scenarios import Scenario
from harness.deploy import ledger
from harness.deploy.attach import Deployed, open_front_door
from harness.deploy.placements import PlacingRuntime
from shared.runtime import SagaRuntime
from shared.settings import Settings
from shared.store.factory import VariantStores, open_variant_stores
from shared.telemetry import HARNESS, Tracing, configure_tracing

VARIANTS = ("orchestration", "choreography")


@dataclass
class Session:
    """Open runtimes by variant, and where this session's traces go."""

    runtimes: dict[str, SagaRuntime]
    tracing: Tracing
    traces_path: Path
    stores: VariantStores | None = None
    """Where each variant's stores live; the benchmark opens its floor's stores beside them
    (None when every variant is driven from a deployment's front door)."""
    deployed: Deployed | None = None
    """Variants driven from a deployment's front door: each run is written to its ledger."""

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
            for runtime in self.runtimes.values():
                for scenario in scenarios:
                    run = await run_scenario(
                        self._placing(runtime, tags[scenario.name]),
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
        )
        ledger.record(self.deployed.state_dir, entry)

    def _placing(self, runtime: SagaRuntime, tag: str) -> SagaRuntime:
        """On a deployment, the runtime that records each saga in the ledger as it is placed."""
        if self.deployed is None or runtime.variant not in self.deployed.variants:
            return runtime
        return PlacingRuntime(runtime, ledger.folder_of(self.deployed.state_dir), tag)

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
    **options: Any,
) -> AsyncIterator[Session]:
    """Start each variant's embedded servers and services; stop them on exit.

    Each variant gets business state of its own on the store the settings choose. A variant
    of ``deployed`` is driven from the front door of that deployment instead (nothing of it
    is started here).
    """
    settings = settings or Settings()
    tracing = configure_tracing(HARNESS)
    attached = deployed.variants if deployed is not None else {}
    with tracing.exporting(jsonl=traces_path):
        async with AsyncExitStack() as stack:
            stores = None
            if any(variant not in attached for variant in variants):
                stores = await stack.enter_async_context(open_variant_stores(settings, state_dir))
            runtimes: dict[str, SagaRuntime] = {}
            for variant in variants:
                if variant in attached:
                    runtimes[variant] = await stack.enter_async_context(
                        open_front_door(variant, attached[variant], tracing)
                    )
                    continue
                assert stores is not None
                factory = runtime_factory(variant)
                runtimes[variant] = await stack.enter_async_context(
                    factory(
                        state_dir / variant,
                        stores=stores(variant),
                        **{"tracing": tracing, **options.get(variant, {})},
                    )
                )
            yield Session(runtimes, tracing, traces_path, stores, deployed)
        # Leaving ``exporting`` flushes: spans that end while the runtimes stop (a cancelled
        # activity) reach the file too.
