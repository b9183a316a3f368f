"""The aiosqlite store (one hop per statement) the services use until they move to `Store.run`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

Params = Sequence[Any]


class Tx:
    """An open transaction; every service write and its outbox/inbox rows go through one."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn
        self._savepoints = 0

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(sql, params)
        return cursor.rowcount

    async def fetchone(self, sql: str, params: Params = ()) -> aiosqlite.Row | None:
        cursor = await self._conn.execute(sql, params)
        return await cursor.fetchone()

    async def fetchall(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        cursor = await self._conn.execute(sql, params)
        return list(await cursor.fetchall())

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Undo the block's writes if it raises, keeping the rest of the transaction."""
        self._savepoints += 1
        name = f"sp{self._savepoints}"
        await self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self._conn.execute(f"ROLLBACK TO {name}")
            await self._conn.execute(f"RELEASE {name}")
            raise
        await self._conn.execute(f"RELEASE {name}")


class SqliteStore:
    """A service's own SQLite file; ``migrations`` run once each, tracked by user_version."""

    def __init__(self, path: Path, migrations: Sequence[str], *, synchronous: str = "NORMAL"):
        self.path = path
        self._migrations = migrations
        self._synchronous = synchronous
        self._conn: aiosqlite.Connection | None = None
        # One writer per process: BEGIN IMMEDIATE then serialises across processes too.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={self._synchronous}")
        await conn.execute("PRAGMA busy_timeout=10000")
        self._conn = conn
        await self._migrate()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _migrate(self) -> None:
        async with self.transaction() as tx:
            row = await tx.fetchone("PRAGMA user_version")
            version = int(row[0]) if row else 0
            for script in self._migrations[version:]:
                for statement in filter(str.strip, script.split(";")):
                    await tx.execute(statement)
            await tx.execute(f"PRAGMA user_version={len(self._migrations)}")

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError(f"store {self.path} is not open")
        return self._conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """BEGIN IMMEDIATE ... COMMIT; any exception (a simulated crash too) rolls back.

        BEGIN, COMMIT and ROLLBACK run to completion even when the task is cancelled meanwhile
        (the statement is already queued on the connection's thread); the lock is held until
        the connection is out of the transaction, so no other writer finds it half-open.
        """
        async with self._lock:
            conn = self.conn
            try:
                await _settle(conn.execute("BEGIN IMMEDIATE"))
                yield Tx(conn)
            except BaseException:
                if conn.in_transaction:
                    await _settle(conn.execute("ROLLBACK"))
                raise
            await _settle(conn.execute("COMMIT"))

    async def read(self, sql: str, params: Params = ()) -> list[aiosqlite.Row]:
        """A read outside any write transaction (WAL readers never block the writer)."""
        async with self._lock:
            cursor = await self.conn.execute(sql, params)
            return list(await cursor.fetchall())


async def _settle(statement: Awaitable[Any]) -> None:
    """Await a statement to its end despite cancellation, then re-raise a cancel received."""
    task = asyncio.ensure_future(statement)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = True
    task.result()
    if cancelled:
        raise asyncio.CancelledError
