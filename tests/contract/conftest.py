"""One runtime per variant and store backend, shared by every contract test of a module.

The suite runs six times: each variant on SQLite files and on Postgres (a database of its own
on the session's embedded server, one schema per service), the orchestration once with remote
and once with local activities, as one abstract suite over several infrastructures.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from harness.compare.faulty import Faulty, injected
from shared.definitions import ORDERS_V1
from shared.postgres_server import EmbeddedPostgres
from shared.runtime import SagaRuntime
from shared.store import StoreFactory, sqlite_stores
from shared.store.postgres import postgres_stores

CONFIGS = (("orchestration", "remote"), ("orchestration", "local"), ("choreography", None))
"""Each variant, the orchestration in both activity modes (``--activities``)."""
BACKENDS = ("sqlite", "postgres")


async def _stores(backend: str, server: EmbeddedPostgres, data_dir: Path) -> StoreFactory:
    if backend == "sqlite":
        return sqlite_stores(data_dir)
    url = await server.create_database(f"contract_{uuid.uuid4().hex[:12]}")
    return postgres_stores(url)


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=[(v, a, b) for v, a in CONFIGS for b in BACKENDS],
    ids=lambda p: "-".join(part for part in p if part),
)
async def runtime(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: EmbeddedPostgres,
) -> AsyncIterator[Faulty[SagaRuntime]]:
    variant, activities, backend = request.param
    module = importlib.import_module(f"{variant}.runtime")
    data_dir: Path = tmp_path_factory.mktemp(f"{variant}-{backend}")
    stores = await _stores(backend, postgres_server, data_dir)
    options = {"activities": activities} if activities else {}
    plans, hooks = injected(variant)
    async with module.open_runtime(
        data_dir, ORDERS_V1, stores=stores, hooks=hooks, **options
    ) as started:
        yield Faulty(started, plans)
