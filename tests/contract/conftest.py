"""One runtime per variant and store backend, shared by every contract test of a module.

The suite runs four times: each variant on SQLite files and on Postgres (a database of its own
on the session's embedded server, one schema per service), as one abstract suite over several
infrastructures.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from shared.postgres_server import EmbeddedPostgres
from shared.runtime import SagaRuntime
from shared.store import StoreFactory, sqlite_stores
from shared.store.postgres import postgres_stores

VARIANTS = ("orchestration", "choreography")
BACKENDS = ("sqlite", "postgres")


async def _stores(backend: str, server: EmbeddedPostgres, data_dir: Path) -> StoreFactory:
    if backend == "sqlite":
        return sqlite_stores(data_dir)
    url = await server.create_database(f"contract_{uuid.uuid4().hex[:12]}")
    return postgres_stores(url)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[(v, b) for v in VARIANTS for b in BACKENDS],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
async def runtime(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: EmbeddedPostgres,
) -> AsyncIterator[SagaRuntime]:
    variant, backend = request.param
    module = importlib.import_module(f"{variant}.runtime")
    data_dir: Path = tmp_path_factory.mktemp(f"{variant}-{backend}")
    stores = await _stores(backend, postgres_server, data_dir)
    async with module.open_runtime(data_dir, stores=stores) as started:
        yield started
