"""Orchestration fixtures: one real dev server per module, a fresh runtime per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from harness.compare.faulty import Faulty, injected
from orchestration.runtime import OrchestrationRuntime, open_runtime
from orchestration.server import TemporalServer, TemporalSettings
from shared.definitions import ORDERS_V1
from shared.seed import seed


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def temporal_server() -> AsyncIterator[TemporalServer]:
    """A headless in-memory `temporal server start-dev`, shared by the module's tests."""
    async with TemporalServer(ui=False) as server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def runtime(
    temporal_server: TemporalServer, tmp_path: Path
) -> AsyncIterator[Faulty[OrchestrationRuntime]]:
    """A seeded Domain and an in-process worker on a task queue of its own (isolated), stopped
    after the test; with a fault injector whose plans ``start_saga`` installs (the raw runtime
    is ``.runtime``)."""
    settings = TemporalSettings(address=temporal_server.address).isolated()
    plans, hooks = injected("orchestration")
    async with open_runtime(tmp_path, ORDERS_V1, settings=settings, hooks=hooks) as started:
        await seed(started.domain)
        yield Faulty(started, plans)
