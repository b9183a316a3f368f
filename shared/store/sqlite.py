"""The SQLite adapter: one WAL file per service, a writer thread and a reader thread.

Every ``run(work)`` is one hop to the store's writer thread, where ``work`` runs between
``BEGIN IMMEDIATE`` and ``COMMIT`` on the standard library's ``sqlite3``: one writer at a time
in this process, and ``BEGIN IMMEDIATE`` with a busy timeout serializes writers of other
processes on the same file. Reads run on a second connection in a thread of their own; in WAL
mode they see the last commit and never wait for the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from shared.store.base import (
    Dialect,
    Migration,
    Params,
    Row,
    Store,
    StoreFactory,
    Tx,
    apply_migrations,
)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000


class SqliteDialect:
    name = "sqlite"

    def greatest(self, *expressions: str) -> str:
        return f"max({', '.join(expressions)})"

    def ddl(self, script: str) -> str:
        return script.replace("{id}", "INTEGER PRIMARY KEY AUTOINCREMENT").replace("{blob}", "BLOB")

    def skip_locked(self) -> str:
        return ""


DIALECT = SqliteDialect()


def _dict_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return dict(zip([column[0] for column in cursor.description], values, strict=True))


class SqliteTx:
    """A transaction on one connection, used synchronously by ``work``."""

    dialect: Dialect = DIALECT

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count(1)

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(sql, params).rowcount

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        self._conn.executemany(sql, params)

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = self._conn.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._conn.execute(sql, params).fetchall())

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        name = f"sp{next(self._savepoints)}"
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            raise
        self._conn.execute(f"RELEASE {name}")


class SqliteStore:
    """A service's own SQLite file; nothing is opened until `open()`.

    ``work`` runs in the store's thread with a copy of the caller's context variables, so
    spans it starts (an outbox row's creation span) have the caller's span as parent.
    """

    dialect: Dialect = DIALECT

    def __init__(
        self,
        name: str,
        path: Path,
        migrations: Sequence[Migration] = (),
        *,
        synchronous: str = "NORMAL",
    ) -> None:
        self.name = name
        self.path = path
        self.migrations = list(migrations)
        self._synchronous = synchronous
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-w-{self.name}")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-r-{self.name}")
        loop = asyncio.get_running_loop()
        try:
            self._write_conn = await loop.run_in_executor(self._writer, self._connect, False)
            await self.run(lambda tx: apply_migrations(tx, self.migrations, time.time()))
            self._read_conn = await loop.run_in_executor(self._reader, self._connect, True)
        except BaseException:
            await self.close()  # no threads or connections left behind by a failed open
            raise

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1e3
        )
        conn.row_factory = _dict_row
        if not readonly:
            _use_wal(conn)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        return conn

    async def close(self) -> None:
        for pool, conn in ((self._writer, self._write_conn), (self._reader, self._read_conn)):
            if pool is None:
                continue
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(pool, conn.close)
            pool.shutdown(wait=True)
        self._writer = self._reader = None
        self._write_conn = self._read_conn = None

    async def run(self, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        if self._writer is None:
            raise RuntimeError(f"store {self.name} ({self.path}) is not open")
        return await settle(self._submit(self._writer, self._write, work))

    @staticmethod
    def _submit(
        pool: ThreadPoolExecutor, call: Callable[[Callable[[Tx], T]], T], work: Any
    ) -> asyncio.Future[T]:
        """Run ``call(work)`` in ``pool`` with the caller's context (its current span, say)."""
        context = contextvars.copy_context()
        return asyncio.get_running_loop().run_in_executor(pool, context.run, call, work)

    def _write(self, work: Callable[[Tx], T]) -> T:
        conn = self._write_conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(SqliteTx(conn))
            conn.execute("COMMIT")
        except BaseException:
            # A failed COMMIT leaves the transaction open: end it, or every later BEGIN fails.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def read(self, work: Callable[[Tx], T]) -> T:
        if self._reader is None:
            raise RuntimeError(f"store {self.name} ({self.path}) is not open")
        return await settle(self._submit(self._reader, self._read, work))

    def _read(self, work: Callable[[Tx], T]) -> T:
        conn = self._read_conn
        assert conn is not None
        conn.execute("BEGIN")  # one snapshot for every statement of ``work``
        try:
            return work(SqliteTx(conn))
        finally:
            conn.execute("COMMIT")

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(lambda tx: tx.fetchall(sql, params))


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL (once per file; later connections find it so).

    Switching needs the file to itself, and SQLite answers "locked" at once, without its busy
    handler, while another connection holds it (two processes opening a new file together):
    retry until the busy timeout, as the handler would.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1e3
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone() or {}
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        value = mode[0] if isinstance(mode, tuple) else next(iter(mode.values()), None)
        if str(value).lower() == "wal":
            return
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(f"cannot switch {conn} to WAL (mode {mode})")
        time.sleep(0.01)


async def settle(future: asyncio.Future[T]) -> T:
    """Await a transaction to its end despite cancellation, then re-raise a cancel received.

    The work runs in a thread and cannot be interrupted half way; waiting for it keeps
    "the task was cancelled" from meaning "the transaction may still be running".
    """
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:
            break  # done with this exception: ``future.result()`` raises it below
    if cancelled:
        raise asyncio.CancelledError
    return future.result()


def sqlite_stores(data_dir: Path, *, synchronous: str = "NORMAL") -> StoreFactory:
    """One SQLite file per service in ``data_dir`` (``inventory.db`` ...)."""

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        return SqliteStore(name, data_dir / f"{name}.db", migrations, synchronous=synchronous)

    return factory
