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

from harness.runner import ScenarioRun, new_run_tag, run_scenario
from harness.scenarios import Scenario
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
    """Where each variant's stores live; the benchmark opens its floor's stores beside them."""

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
            tag = new_run_tag()
            for runtime in self.runtimes.values():
                for scenario in scenarios:
                    run = await run_scenario(
                        runtime, scenario, run_tag=tag, timeout_s=timeout_s, repeat=number
                    )
                    runs.append(run)
                    if on_done is not None:
                        on_done(run)
        self.tracing.flush()
        return runs

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
    **options: Any,
) -> AsyncIterator[Session]:
    """Start each variant's embedded servers (or connect per settings); stop them on exit.

    Each variant gets business state of its own on the store the settings choose.
    """
    settings = settings or Settings()
    tracing = configure_tracing(HARNESS)
    with tracing.exporting(jsonl=traces_path):
        async with AsyncExitStack() as stack:
            stores = await stack.enter_async_context(open_variant_stores(settings, state_dir))
            runtimes = {}
            for variant in variants:
                factory = runtime_factory(variant)
                runtimes[variant] = await stack.enter_async_context(
                    factory(
                        state_dir / variant,
                        stores=stores(variant),
                        **{"tracing": tracing, **options.get(variant, {})},
                    )
                )
            yield Session(runtimes, tracing, traces_path, stores)
        # Leaving ``exporting`` flushes: spans that end while the runtimes stop (a cancelled
        # activity) reach the file too.
