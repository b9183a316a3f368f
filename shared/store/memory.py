"""The in-memory store: the Store protocol over in-memory SQLite, on the event loop.

For unit tests and fakes: no files, no threads, no server. It speaks the SQLite dialect and
raises the store's own errors, and it passes the same store contract suite as the SQLite and
Postgres adapters (``tests/integration/shared/test_store.py``), so it cannot drift from them.
Each ``run`` is one transaction with no ``await`` inside, after one hop to the loop (another
task may run before it, as with a real store): atomic, and absent if cancelled at the hop.
It follows the same retry rule (a `Conflict` raised by ``work`` runs it again).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from shared.store.base import (
    Dialect,
    Migration,
    Params,
    Row,
    Store,
    StoreFactory,
    Tx,
    apply_migrations,
    check_migrations,
)
from shared.store.retry import RETRY, RetryRule, retrying
from shared.store.sqlite_tx import DIALECT, SqliteTx, dict_row, finish, sqlite_error

T = TypeVar("T")


def memory_database() -> sqlite3.Connection:
    """One in-memory database, used on the loop's thread only."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = dict_row
    return conn


class MemoryStore:
    """A service's store in memory; stores built on one ``database`` share its rows."""

    dialect: Dialect = DIALECT

    def __init__(
        self,
        name: str,
        migrations: Sequence[Migration] = (),
        *,
        database: sqlite3.Connection | None = None,
        retry: RetryRule = RETRY,
    ) -> None:
        self.name = name
        self.migrations = list(migrations)
        self._database = database
        self._conn: sqlite3.Connection | None = None
        self._retry = retry

    async def open(self, *, migrate: bool = True) -> None:
        if self._conn is not None:
            return
        self._conn = self._database or memory_database()
        try:
            if migrate:
                await self.run(lambda tx: apply_migrations(tx, self.migrations, time.time()))
            else:
                await self.read(lambda tx: check_migrations(tx, self.migrations, self.name))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._conn is not None and self._database is None:
            self._conn.close()  # its own database; a shared one outlives the store
        self._conn = None

    async def run(self, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        attempt = functools.partial(self._attempt, work)
        return await retrying(self._retry, self.name, attempt)

    async def _attempt(self, work: Callable[[Tx], T]) -> T:
        await asyncio.sleep(0)  # a hop, as a real store's: other tasks may run before it
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise sqlite_error(error) from error
        return finish(conn, work)

    async def read(self, work: Callable[[Tx], T]) -> T:
        await asyncio.sleep(0)
        conn = self._connection()
        conn.execute("PRAGMA query_only=1")  # a write in ``read`` fails, as on the real stores
        try:
            return work(SqliteTx(conn))
        finally:
            conn.execute("PRAGMA query_only=0")

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(lambda tx: tx.fetchall(sql, params))

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.name} is not open")
        return self._conn


def memory_stores() -> StoreFactory:
    """A factory of memory stores: the same name opens the same database (as a SQLite file or
    a Postgres schema would), for as long as the factory lives."""
    databases: dict[str, sqlite3.Connection] = {}

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        database = databases.get(name) or databases.setdefault(name, memory_database())
        return MemoryStore(name, migrations, database=database)

    return factory
