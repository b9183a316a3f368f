"""Postgres for tests: one embedded server per session, store factories isolated per test.

Import the fixtures into a conftest (``from pg_support import postgres_server,
postgres_store_factory``) to use them; `isolated_stores` gives the same factory to code that
builds its own fixtures (a backend-parametrized ``store_factory``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from shared.postgres_server import EmbeddedPostgres
from shared.store.base import StoreFactory
from shared.store.postgres import postgres_stores


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[EmbeddedPostgres]:
    """One embedded Postgres (temporary state dir) for the whole session.

    Started and stopped on a loop of its own, so tests on any loop scope can share it.
    """
    server = EmbeddedPostgres()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(server.start())
        yield server
    finally:
        loop.run_until_complete(server.stop())
        loop.close()


def isolated_stores(server: EmbeddedPostgres) -> StoreFactory:
    """Stores in schemas of their own (``t<random>_inventory`` ...), so tests sharing the
    session's server never see each other's rows."""
    return postgres_stores(server.url, schema_prefix=f"t{uuid.uuid4().hex[:12]}_")


@pytest.fixture
def postgres_store_factory(postgres_server: EmbeddedPostgres) -> StoreFactory:
    """A `StoreFactory` on the session's server, isolated to the test."""
    return isolated_stores(postgres_server)
