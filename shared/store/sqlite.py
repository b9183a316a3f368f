"""The SQLite adapter: one WAL file per service; writes on the event loop, reads on a thread.

A ``run(work)`` tries ``BEGIN IMMEDIATE`` on the write connection right where it is awaited,
with a busy timeout of zero: when no other connection holds the file's write lock (nearly
always: one process writes each file) the whole transaction — ``work`` and ``COMMIT`` — runs
there, synchronously, with no ``await`` inside, so it is never cancelled half way and costs no
thread hop. When another connection holds the lock, the transaction is handed to the store's
writer thread, which waits for the lock with the normal busy timeout: the loop never blocks
on another process. Until the thread has finished what it was handed, later transactions
queue behind it there (one connection, one writer, transactions in the order they came).

Reads run on a second connection in a thread of their own; in WAL mode they see the last
commit and never wait for the writer. Driver errors leave as `shared.store.errors` classes.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sqlite3
import time
from collections.abc import Callable, Sequence
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
    check_migrations,
)
from shared.store.errors import Conflict, SchemaBehind
from shared.store.retry import RETRY, RetryRule, retrying, settle
from shared.store.sqlite_tx import DIALECT, SqliteTx, busy, dict_row, finish, sqlite_error

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
"""How long the writer thread (and the reader) wait for another connection's lock."""


class _LockHeld(Exception):
    """``BEGIN IMMEDIATE`` on the loop met another connection's write lock."""


class SqliteStore:
    """A service's own SQLite file; nothing is opened until `open()`.

    ``work`` runs with the caller's context variables (on the loop, the caller's own; in the
    writer thread, a copy), so spans it starts (an outbox row's creation span) have the
    caller's span as parent.
    """

    dialect: Dialect = DIALECT

    def __init__(
        self,
        name: str,
        path: Path,
        migrations: Sequence[Migration] = (),
        *,
        synchronous: str = "NORMAL",
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        retry: RetryRule = RETRY,
    ) -> None:
        self.name = name
        self.path = path
        self.migrations = list(migrations)
        self._synchronous = synchronous
        self._busy_timeout_ms = busy_timeout_ms
        self._retry = retry
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        self._write_conn: sqlite3.Connection | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._handed_over = 0
        """Transactions given to the writer thread and not ended yet: while there are any,
        the thread owns the write connection and later transactions queue behind them."""
        self.handovers = 0
        """Transactions (attempts) run in the writer thread: the ones that met another
        connection's lock, and those that queued behind them."""

    async def open(self, *, migrate: bool = True) -> None:
        if not migrate and not self.path.exists():
            raise SchemaBehind(
                f"store {self.name}: no database at {self.path}; start the processes that own"
                " it (they create it) or fix the state directory"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-w-{self.name}")
        self._reader = ThreadPoolExecutor(1, thread_name_prefix=f"sqlite-r-{self.name}")
        loop = asyncio.get_running_loop()
        try:
            self._write_conn = await loop.run_in_executor(self._writer, self._connect, False)
            self._read_conn = await loop.run_in_executor(self._reader, self._connect, True)
            if migrate:
                await self.run(lambda tx: apply_migrations(tx, self.migrations, time.time()))
            else:
                await self.read(lambda tx: check_migrations(tx, self.migrations, self.name))
        except BaseException:
            await self.close()  # no threads or connections left behind by a failed open
            raise

    def _connect(self, readonly: bool) -> sqlite3.Connection:
        try:
            return self._configure(
                sqlite3.connect(
                    self.path,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=self._busy_timeout_ms / 1e3,
                ),
                readonly,
            )
        except sqlite3.Error as error:
            raise sqlite_error(error) from error

    def _configure(self, conn: sqlite3.Connection, readonly: bool) -> sqlite3.Connection:
        conn.row_factory = dict_row
        if not readonly:
            _use_wal(conn, self._busy_timeout_ms)
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        else:
            conn.execute("PRAGMA busy_timeout=0")  # the loop's BEGIN must fail fast, not wait
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
        if self._write_conn is None:
            raise RuntimeError(f"store {self.name} ({self.path}) is not open")
        return await retrying(self._retry, self.name, functools.partial(self._write_once, work))

    async def _write_once(self, work: Callable[[Tx], T]) -> T:
        """One attempt: on the loop if the lock is free and the thread idle, else the thread."""
        if not self._handed_over:
            try:
                return self._write_here(work)
            except _LockHeld:
                pass  # another connection writes: wait for it in the thread, off the loop
        return await self._write_in_thread(work)

    def _write_here(self, work: Callable[[Tx], T]) -> T:
        """The whole transaction where it is awaited, if the write lock is free right now."""
        conn = self._write_conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            if busy(error):
                raise _LockHeld from error
            raise sqlite_error(error) from error
        return finish(conn, work)

    async def _write_in_thread(self, work: Callable[[Tx], T]) -> T:
        assert self._writer is not None
        self._handed_over += 1
        self.handovers += 1
        future = _submit(self._writer, self._write_waiting, work)
        future.add_done_callback(self._handed_back)
        return await settle(future)

    def _handed_back(self, _: object) -> None:
        self._handed_over -= 1

    def _write_waiting(self, work: Callable[[Tx], T]) -> T:
        """In the writer thread: wait for the lock up to the busy timeout, then run ``work``."""
        conn = self._write_conn
        assert conn is not None
        try:
            conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
            try:
                conn.execute("BEGIN IMMEDIATE")
            finally:
                conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error as error:
            raise sqlite_error(error) from error
        return finish(conn, work)

    async def read(self, work: Callable[[Tx], T]) -> T:
        if self._reader is None:
            raise RuntimeError(f"store {self.name} ({self.path}) is not open")
        return await settle(_submit(self._reader, self._read, work))

    def _read(self, work: Callable[[Tx], T]) -> T:
        conn = self._read_conn
        assert conn is not None
        try:
            conn.execute("BEGIN")  # one snapshot for every statement of ``work``
        except sqlite3.Error as error:
            raise sqlite_error(error) from error
        try:
            return work(SqliteTx(conn))
        finally:
            conn.execute("COMMIT")

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(lambda tx: tx.fetchall(sql, params))


def _submit(pool: ThreadPoolExecutor, call: Callable[[T], Any], arg: T) -> asyncio.Future[Any]:
    """Run ``call(arg)`` in ``pool`` with the caller's context (its current span, say)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(pool, context.run, call, arg)


def _use_wal(conn: sqlite3.Connection, timeout_ms: int) -> None:
    """Switch the file to WAL (once per file; later connections find it so).

    Switching needs the file to itself, and SQLite answers "locked" at once, without its busy
    handler, while another connection holds it (two processes opening a new file together):
    retry until the busy timeout, as the handler would.
    """
    deadline = time.monotonic() + timeout_ms / 1e3
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone() or {}
        except sqlite3.OperationalError as error:
            if not busy(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
            continue
        value = mode[0] if isinstance(mode, tuple) else next(iter(mode.values()), None)
        if str(value).lower() == "wal":
            return
        if time.monotonic() > deadline:
            raise Conflict(f"cannot switch {conn} to WAL (mode {mode})", code="SQLITE_BUSY")
        time.sleep(0.01)


def sqlite_stores(data_dir: Path, *, synchronous: str = "NORMAL", **options: Any) -> StoreFactory:
    """One SQLite file per service in ``data_dir`` (``inventory.db`` ...)."""

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        path = data_dir / f"{name}.db"
        return SqliteStore(name, path, migrations, synchronous=synchronous, **options)

    return factory
