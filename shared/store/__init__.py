"""Per-service stores: one database per service, reached only through a transaction.

`base` is the protocol (`Store`, `Tx`, `Dialect`, `Migration`, `StoreFactory`); `errors` the
store's own exceptions (no driver's leaves this package); `retry` the retry rule every adapter
follows; `sqlite`, `postgres` and `memory` implement the protocol (`sqlite_tx`, `postgres_tx`:
each backend's dialect, `Tx` and error translation; `bridge`: synchronous ``work`` over the
asynchronous Postgres driver).
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
    check_migrations,
    migrations,
)
from shared.store.errors import (
    CommitUnknown,
    Conflict,
    DatabaseError,
    DataError,
    IntegrityError,
    OperationalError,
    ProgrammingError,
    SchemaBehind,
    StoreError,
    StoreUnavailable,
)
from shared.store.sqlite import SqliteStore, sqlite_stores

__all__ = [
    "CommitUnknown",
    "Conflict",
    "DataError",
    "DatabaseError",
    "Dialect",
    "IntegrityError",
    "Migration",
    "OperationalError",
    "Params",
    "ProgrammingError",
    "Row",
    "SchemaBehind",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreFactory",
    "StoreUnavailable",
    "Tx",
    "Work",
    "apply_migrations",
    "check_migrations",
    "migrations",
    "sqlite_stores",
]
