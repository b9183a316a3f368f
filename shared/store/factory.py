"""Settings to a `StoreFactory`: the one place that picks the service stores' backend.

SQLite (one file per service) is the default. With ``store = postgres`` the stores are schemas
in the database at ``postgres_url``, or, when no URL is set, in an embedded Postgres that
lives as long as the ``open_stores`` block.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from shared.postgres_server import EmbeddedPostgres
from shared.settings import Settings, StoreKind
from shared.store.base import StoreFactory
from shared.store.postgres import postgres_stores
from shared.store.sqlite import sqlite_stores


@asynccontextmanager
async def open_stores(
    settings: Settings, state_dir: Path | None = None
) -> AsyncIterator[StoreFactory]:
    """Yield the factory ``settings`` ask for; state goes to ``state_dir`` (default: the
    settings' ``data_dir``): SQLite files there, an embedded Postgres in ``postgres/``.
    Postgres schemas are ``<postgres_schema_prefix><service>``."""
    root = state_dir or settings.data_dir
    prefix = settings.postgres_schema_prefix
    if settings.store is StoreKind.SQLITE:
        yield sqlite_stores(root, synchronous=settings.sqlite_synchronous)
    elif settings.postgres_url:
        yield postgres_stores(settings.postgres_url, schema_prefix=prefix)
    else:
        async with EmbeddedPostgres(state_dir=root / "postgres") as server:
            yield postgres_stores(server.url, schema_prefix=prefix)


VariantStores = Callable[[str], StoreFactory]
"""The stores of one variant (``"orchestration"`` ...): each keeps its own business state."""


@asynccontextmanager
async def open_variant_stores(settings: Settings, state_dir: Path) -> AsyncIterator[VariantStores]:
    """Stores for several variants side by side in one run: SQLite files in
    ``state_dir/<variant>/``, or schemas ``<variant>_<service>`` on one Postgres (the one at
    ``postgres_url``, or one embedded server for the whole block)."""
    if settings.store is StoreKind.SQLITE:
        sync = settings.sqlite_synchronous
        yield lambda variant: sqlite_stores(state_dir / variant, synchronous=sync)
    elif settings.postgres_url:
        url = settings.postgres_url
        yield lambda variant: postgres_stores(url, schema_prefix=f"{variant}_")
    else:
        async with EmbeddedPostgres(state_dir=state_dir / "postgres") as server:
            yield lambda variant: postgres_stores(server.url, schema_prefix=f"{variant}_")
