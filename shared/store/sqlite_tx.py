"""SQLite's side of a transaction: the dialect, rows as dicts, ``sqlite3``'s errors as the
store's, and `SqliteTx`, what ``work`` holds (shared by the SQLite and memory stores)."""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from shared.store.base import Dialect, Params, Row, Tx
from shared.store.errors import (
    Conflict,
    DatabaseError,
    DataError,
    IntegrityError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StoreError,
    StoreUnavailable,
)

T = TypeVar("T")


class SqliteDialect:
    name = "sqlite"

    def greatest(self, *expressions: str) -> str:
        return f"max({', '.join(expressions)})"

    def ddl(self, script: str) -> str:
        return script.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT").replace("{blob}", "BLOB")

    def skip_locked(self) -> str:
        return ""

    def for_update(self) -> str:
        return ""


DIALECT = SqliteDialect()

_PRIMARY_CODES: dict[int, type[StoreError]] = {
    1: ProgrammingError,  # SQLITE_ERROR: syntax, no such table or column
    2: InternalError,
    5: Conflict,  # SQLITE_BUSY: another connection holds the lock
    6: Conflict,  # SQLITE_LOCKED
    8: ProgrammingError,  # SQLITE_READONLY: a write on the read connection (query_only)
    14: StoreUnavailable,  # SQLITE_CANTOPEN
    18: DataError,  # SQLITE_TOOBIG
    19: IntegrityError,  # SQLITE_CONSTRAINT
    20: DataError,  # SQLITE_MISMATCH
    21: ProgrammingError,  # SQLITE_MISUSE
    25: ProgrammingError,  # SQLITE_RANGE: a parameter index out of range
}
_DRIVER_CLASSES: tuple[tuple[type[sqlite3.Error], type[StoreError]], ...] = (
    (sqlite3.IntegrityError, IntegrityError),
    (sqlite3.ProgrammingError, ProgrammingError),
    (sqlite3.InterfaceError, ProgrammingError),
    (sqlite3.DataError, DataError),
    (sqlite3.NotSupportedError, NotSupportedError),
    (sqlite3.InternalError, InternalError),
    (sqlite3.OperationalError, OperationalError),
)


def sqlite_error(error: sqlite3.Error) -> StoreError:
    """The store's error for a ``sqlite3`` one (chain it: ``raise sqlite_error(e) from e``)."""
    code: int | None = getattr(error, "sqlite_errorcode", None)
    kind = _PRIMARY_CODES.get(code & 0xFF) if code is not None else None
    if kind is None:
        kind = next((ours for theirs, ours in _DRIVER_CLASSES if isinstance(error, theirs)), None)
    return (kind or DatabaseError)(str(error), code=getattr(error, "sqlite_errorname", None))


def busy(error: sqlite3.Error) -> bool:
    """Whether another connection holds the lock (``SQLITE_BUSY`` or ``SQLITE_LOCKED``)."""
    code: int | None = getattr(error, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (5, 6)


def dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip([column[0] for column in cursor.description], values, strict=True))


class SqliteTx:
    """A transaction on one connection, used synchronously by ``work``."""

    dialect: Dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count(1)

    def execute(self, sql: str, params: Params = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.Error as error:
            raise sqlite_error(error) from error

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        try:
            self._conn.executemany(sql, params)
        except sqlite3.Error as error:
            raise sqlite_error(error) from error

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        try:
            row: Row | None = self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as error:
            raise sqlite_error(error) from error
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        try:
            return list(self._conn.execute(sql, params).fetchall())
        except sqlite3.Error as error:
            raise sqlite_error(error) from error

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        name = f"sp{next(self._savepoints)}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO {name}")
            self.execute(f"RELEASE {name}")
            raise
        self.execute(f"RELEASE {name}")


def finish(conn: sqlite3.Connection, work: Callable[[Tx], T]) -> T:
    """Run ``work`` in the transaction just begun on ``conn``; commit, or roll back if it
    raises (a failed ``COMMIT`` leaves the transaction open: end it, or every later BEGIN
    fails). Driver errors leave as the store's."""
    try:
        result = work(SqliteTx(conn))
        conn.execute("COMMIT")
    except BaseException as error:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(error, sqlite3.Error):
            raise sqlite_error(error) from error
        raise
    return result
