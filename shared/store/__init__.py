"""Per-service stores: one database per service, reached only through a transaction.

`base` is the protocol (`Store`, `Tx`, `Dialect`, `Migration`, `StoreFactory`); `sqlite`
implements it over the standard library's ``sqlite3``.
"""

from shared.store.base import (
    Dialect,
    Migration,
    Params,
    Row,
    Store,
    StoreFactory,
    Tx,
    Work,
    apply_migrations,
    migrations,
)
from shared.store.sqlite import SqliteStore, sqlite_stores

__all__ = [
    "Dialect",
    "Migration",
    "Params",
    "Row",
    "SqliteStore",
    "Store",
    "StoreFactory",
    "Tx",
    "Work",
    "apply_migrations",
    "migrations",
    "sqlite_stores",
]
