"""Postgres' side of a transaction: the dialect, `?` to `$n`, rows as dicts, and asyncpg's
errors as the store's; `PostgresTx` is what ``work`` holds (its calls wait for the driver on
the loop through `shared.store.bridge`)."""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
from collections.abc import Awaitable, Iterable, Iterator
from typing import TypeAlias, TypeVar

import asyncpg
from asyncpg import Record
from asyncpg.connection import Connection as AsyncpgConnection
from asyncpg.pool import PoolConnectionProxy

from shared.store.base import Dialect, Params, Row
from shared.store.bridge import wait
from shared.store.errors import (
    DatabaseError,
    DataError,
    ProgrammingError,
    StoreError,
    StoreUnavailable,
    for_sqlstate,
)

T = TypeVar("T")
Connection: TypeAlias = "AsyncpgConnection[Record] | PoolConnectionProxy[Record]"

_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?""", re.DOTALL)
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # the protocol's state broken, e.g. by a server that hung up
    OSError,  # the socket itself failed
)


class PostgresDialect:
    name = "postgres"

    def greatest(self, *expressions: str) -> str:
        return f"greatest({', '.join(expressions)})"

    def ddl(self, script: str) -> str:
        return script.replace("{id}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY").replace(
            "{blob}", "BYTEA"
        )

    def skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED"

    def for_update(self) -> str:
        return " FOR UPDATE"


DIALECT = PostgresDialect()


def postgres_error(error: BaseException, conn: Connection | None = None) -> StoreError:
    """The store's error for an asyncpg one: by SQLSTATE; else a client-side refusal of a
    parameter (`DataError`), or the connection gone (`StoreUnavailable`)."""
    sqlstate: str | None = getattr(error, "sqlstate", None)
    kind = for_sqlstate(sqlstate)
    if kind is None:
        if isinstance(error, asyncpg.DataError):
            kind = DataError  # "invalid input for query argument $1": a Python value's type
        elif _connection_gone(error, conn):
            kind = StoreUnavailable
        elif isinstance(error, asyncpg.InterfaceError):
            kind = ProgrammingError
        else:
            kind = DatabaseError
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return kind(message, code=sqlstate)


def _connection_gone(error: BaseException, conn: Connection | None) -> bool:
    """The socket failed, the protocol broke (a server that hung up), or the connection is
    closed: no answer will come on it."""
    if isinstance(error, OSError | asyncpg.InternalClientError):
        return True
    return conn is None or conn.is_closed()


@functools.lru_cache(maxsize=4096)
def to_numbered(sql: str) -> str:
    """Portable SQL to Postgres': each ``?`` outside quotes and comments becomes ``$1``,
    ``$2`` ... in order (the server's own placeholders; ``%`` needs no escaping)."""
    numbers = itertools.count(1)
    return _TOKENS.sub(lambda match: _placeholder(match, numbers), sql)


def _placeholder(match: re.Match[str], numbers: Iterator[int]) -> str:
    token = match.group()
    return f"${next(numbers)}" if token == "?" else token


def _rowcount(status: str) -> int:
    """Rows a command changed, from its status (``UPDATE 3``, ``INSERT 0 1``); -1 for DDL."""
    last = status.rpartition(" ")[2]
    return int(last) if last.isdigit() else -1


async def _execute(conn: Connection, sql: str, params: Params) -> int:
    return _rowcount(await conn.execute(sql, *params))


async def _fetchone(conn: Connection, sql: str, params: Params) -> Row | None:
    row = await conn.fetchrow(sql, *params)
    return None if row is None else dict(row.items())


async def fetchall(conn: Connection, sql: str, params: Params) -> list[Row]:
    return [dict(row.items()) for row in await conn.fetch(sql, *params)]


class PostgresTx:
    """A transaction on one pooled connection, used synchronously by ``work``: each call
    waits, in ``work``'s greenlet, for the driver's coroutine the loop runs."""

    dialect: Dialect = DIALECT

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count(1)

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._driver(_execute(self._conn, to_numbered(sql), params))

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        self._driver(self._conn.executemany(to_numbered(sql), [tuple(p) for p in params]))

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return self._driver(_fetchone(self._conn, to_numbered(sql), params))

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return self._driver(fetchall(self._conn, to_numbered(sql), params))

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        name = f"sp{next(self._savepoints)}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.execute(f"RELEASE SAVEPOINT {name}")
            raise
        self.execute(f"RELEASE SAVEPOINT {name}")

    def _driver(self, call: Awaitable[T]) -> T:
        try:
            return wait(call)
        except DRIVER_ERRORS as error:
            raise postgres_error(error, self._conn) from error
