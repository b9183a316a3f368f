"""The store's own errors: a PEP 249-shaped hierarchy that every adapter raises instead of its
driver's exceptions (chained from them, ``raise ... from error``).

Services, the outbox, the inbox and the tracker catch these, never ``sqlite3`` or ``psycopg``
classes: the same ``except IntegrityError`` works on every backend, and the retry rule
(`shared.store.retry`) is one rule over these classes rather than one per driver.

    StoreError                  anything the database refused or could not do (PEP 249 Error)
    ├── DatabaseError
    │   ├── OperationalError    not the SQL's fault: locks, connections, disk
    │   │   ├── Conflict        lost a race for a lock; rolled back, safe to run again
    │   │   └── StoreUnavailable  no connection, or it was lost
    │   │       └── CommitUnknown   lost while committing: the outcome is unknown
    │   ├── IntegrityError      a constraint (unique, check, foreign key, not null)
    │   ├── DataError           a value out of range, a division by zero
    │   ├── ProgrammingError    the SQL is wrong: syntax, no such table, a write in a read
    │   ├── NotSupportedError
    │   └── InternalError
"""

from __future__ import annotations


class StoreError(Exception):
    """Anything a store raises about its database; ``code`` is the driver's own (SQLite's
    result code name, ``SQLITE_BUSY``; Postgres' SQLSTATE, ``40P01``) for messages and logs."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class SchemaBehind(StoreError):
    """A store opened without migrating (a reader such as the monitor) whose schema is not the
    one its code expects: migrations are pending, or the store does not exist."""


class DatabaseError(StoreError):
    """An error reported by the database itself (PEP 249)."""


class OperationalError(DatabaseError):
    """The database could not run the statement for reasons outside the SQL."""


class Conflict(OperationalError):
    """The transaction raced another one and the database rolled it back (SQLite busy or
    locked, Postgres serialization failure or deadlock): nothing of it was committed, so
    running the same ``work`` again is safe. The store does so under its retry rule."""


class StoreUnavailable(OperationalError):
    """The database cannot be reached, or the connection was lost before the commit (then the
    server rolled the transaction back, and the retry rule runs it again on a new one)."""


class CommitUnknown(StoreUnavailable):
    """The connection was lost while the commit was on its way: the transaction may or may not
    have committed. Not retried: the caller's own redelivery decides (every saga transaction
    is idempotent through the step log and the inbox)."""


class IntegrityError(DatabaseError):
    """A constraint refused the write (unique, check, foreign key, not null)."""


class DataError(DatabaseError):
    """A value the database cannot hold or compute (out of range, division by zero)."""


class ProgrammingError(DatabaseError):
    """The SQL is wrong for this database: syntax, a missing table, a write in ``read``."""


class NotSupportedError(DatabaseError):
    """The database does not support what was asked."""


class InternalError(DatabaseError):
    """The database's own state is wrong (the driver says so)."""


_SQLSTATE_CLASSES: dict[str, type[StoreError]] = {
    "08": StoreUnavailable,  # connection exception
    "0A": NotSupportedError,
    "22": DataError,
    "23": IntegrityError,
    "40": Conflict,  # transaction rollback: serialization failure, deadlock
    "42": ProgrammingError,  # syntax error or access rule violation
    "53": OperationalError,  # insufficient resources
    "57": OperationalError,  # operator intervention
    "58": OperationalError,  # system error
    "XX": InternalError,
}
_SQLSTATES: dict[str, type[StoreError]] = {
    "25006": ProgrammingError,  # read_only_sql_transaction: a write inside ``read``
    "55P03": Conflict,  # lock_not_available
    "57P01": StoreUnavailable,  # admin_shutdown: the server is restarting
    "57P02": StoreUnavailable,  # crash_shutdown
    "57P03": StoreUnavailable,  # cannot_connect_now
}


def for_sqlstate(sqlstate: str | None) -> type[StoreError] | None:
    """The class for a Postgres SQLSTATE, or None when the code says nothing specific."""
    if not sqlstate:
        return None
    return _SQLSTATES.get(sqlstate) or _SQLSTATE_CLASSES.get(sqlstate[:2])


__all__ = [
    "CommitUnknown",
    "Conflict",
    "DataError",
    "DatabaseError",
    "IntegrityError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "StoreError",
    "StoreUnavailable",
    "for_sqlstate",
]
