"""One runtime per variant, shared by every contract test of a module (servers start once)."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.runtime import SagaRuntime

VARIANTS = ("orchestration", "choreography")


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=VARIANTS)
async def runtime(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SagaRuntime]:
    module = importlib.import_module(f"{request.param}.runtime")
    data_dir: Path = tmp_path_factory.mktemp(request.param)
    async with module.open_runtime(data_dir) as started:
        yield started
