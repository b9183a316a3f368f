"""The Postgres adapter: one schema per service, psycopg 3 with a pool, a few threads per store.

Every ``run(work)`` is one hop to one of the store's writer threads, which borrows a pooled
connection and runs ``work`` between ``BEGIN ISOLATION LEVEL READ COMMITTED`` and ``COMMIT``.
With a ``key`` the transaction first takes ``pg_advisory_xact_lock`` on a hash of (schema, key),
so a forward step and its compensation for one saga never interleave. A deadlock or a
serialization failure rolls the transaction back and runs ``work`` again (it is a function of
``tx`` alone), a bounded number of times; so does a connection the server dropped (a
restart). Reads run on reader threads in ``READ ONLY, REPEATABLE READ`` transactions: one
snapshot, and MVCC never makes them wait for a writer (a dropped connection is retried too).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import IsolationLevel, errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from shared.servers import ServerError
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
from shared.store.sqlite import settle

T = TypeVar("T")
Connection = psycopg.Connection[DictRow]

WRITERS = 4
READERS = 2
ATTEMPTS = 5
CONNECT_TIMEOUT_S = 10
RETRYABLE: tuple[type[Exception], ...] = (
    errors.DeadlockDetected,
    errors.SerializationFailure,
    psycopg.OperationalError,
)
"""Failures after which the server has rolled back and the same work may simply run again.

An ``OperationalError`` is also a pooled connection the server dropped when it restarted
(``AdminShutdown``, "server closed the connection"): the pool discards it and the work runs on
a new one. A commit whose answer was lost that way is harmless to repeat: every transaction
here is idempotent (step log, inbox, ``ON CONFLICT``)."""

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|[?%]""", re.DOTALL)


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


DIALECT = PostgresDialect()


@functools.lru_cache(maxsize=4096)
def to_pyformat(sql: str) -> str:
    """Portable SQL to psycopg's: ``?`` becomes ``%s`` outside quotes and comments; every
    literal ``%`` becomes ``%%`` (psycopg reads ``%`` everywhere, quotes included)."""
    return _TOKENS.sub(_rewrite_token, sql)


def _rewrite_token(match: re.Match[str]) -> str:
    token = match.group()
    return "%s" if token == "?" else token.replace("%", "%%")


def advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key, the same in every process (``hash()`` is salted)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def describe(url: str) -> str:
    """host:port/database of a URL, without its password, for error messages."""
    params = conninfo_to_dict(url)
    host, port = params.get("host", "localhost"), params.get("port", "5432")
    return f"{host}:{port}/{params.get('dbname', '')}"


class PostgresTx:
    """A transaction on one pooled connection, used synchronously by ``work``."""

    dialect: Dialect = DIALECT

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Params = ()) -> int:
        return self._conn.execute(to_pyformat(sql), tuple(params)).rowcount

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        with self._conn.cursor() as cursor:
            cursor.executemany(to_pyformat(sql), [tuple(p) for p in params])

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return self._conn.execute(to_pyformat(sql), tuple(params)).fetchone()

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return list(self._conn.execute(to_pyformat(sql), tuple(params)).fetchall())

    @contextlib.contextmanager
    def savepoint(self) -> Iterator[None]:
        with self._conn.transaction():  # nested: SAVEPOINT, ROLLBACK TO on error, RELEASE
            yield


class PostgresStore:
    """A service's own schema in a Postgres database; nothing is opened until `open()`.

    One pool of ``writers + readers`` connections, used by as many threads: a reader always
    finds a connection however many writers wait on locks. ``work`` runs with a copy of the
    caller's context variables, so spans it starts keep the caller's span as parent.
    """

    dialect: Dialect = DIALECT

    def __init__(
        self,
        name: str,
        url: str,
        migrations: Sequence[Migration] = (),
        *,
        schema: str | None = None,
        writers: int = WRITERS,
        readers: int = READERS,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.name = name
        self.url = url
        self.schema = schema or name
        if not _SCHEMA.match(self.schema):
            raise ValueError(f"schema name {self.schema!r}: use lower-case letters, digits and _")
        self.migrations = list(migrations)
        self._sizes = (writers, readers)
        self._attempts = attempts
        self._pool: ConnectionPool[Connection] | None = None
        self._writer: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None

    async def open(self) -> None:
        """Connect, create the schema if missing and apply pending migrations, both under a
        per-schema advisory lock so several processes may open the same store at once."""
        writers, readers = self._sizes
        self._pool = await asyncio.to_thread(self._open_pool, writers + readers)
        self._writer = ThreadPoolExecutor(writers, thread_name_prefix=f"pg-w-{self.name}")
        self._reader = ThreadPoolExecutor(readers, thread_name_prefix=f"pg-r-{self.name}")
        lock = advisory_key("migrate", self.schema)
        try:
            await settle(_submit(self._writer, self._write, self._migrate, lock))
        except BaseException:
            await self.close()
            raise

    def _connection_options(self) -> dict[str, Any]:
        return {
            "autocommit": True,  # transactions are explicit: conn.transaction()
            "row_factory": dict_row,
            "options": f"-c search_path={self.schema}",
            "application_name": f"saga-{self.name}",
            "connect_timeout": CONNECT_TIMEOUT_S,
        }

    def _open_pool(self, size: int) -> ConnectionPool[Connection]:
        """A pool of ``size`` connections, after one direct connection that, if it fails,
        says why in one line (the pool itself would only time out)."""
        try:
            psycopg.connect(self.url, **self._connection_options()).close()
        except psycopg.OperationalError as error:
            reason = (str(error).strip().splitlines() or ["no answer"])[-1]
            raise ServerError(
                f"cannot connect to Postgres at {describe(self.url)} ({reason}); "
                "start the server or fix SAGA_POSTGRES_URL"
            ) from None
        pool: ConnectionPool[Connection] = ConnectionPool(
            self.url,
            connection_class=Connection,
            kwargs=self._connection_options(),
            configure=_read_committed,
            min_size=1,
            max_size=size,
            num_workers=1,
            name=f"saga-{self.name}",
            open=False,
        )
        pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        return pool

    def _migrate(self, tx: Tx) -> list[Migration]:
        tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        return apply_migrations(tx, self.migrations, time.time())

    async def close(self) -> None:
        """Let started transactions finish, then close every connection (off the loop)."""
        executors, pool = (self._writer, self._reader), self._pool
        self._writer = self._reader = None
        self._pool = None
        await asyncio.to_thread(_shut_down, executors, pool)

    async def run(self, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        if self._writer is None:
            raise RuntimeError(f"store {self.name} (schema {self.schema}) is not open")
        lock = None if key is None else advisory_key("run", self.schema, key)
        return await settle(_submit(self._writer, self._write, work, lock))

    def _write(self, work: Callable[[Tx], T], lock: int | None) -> T:
        """Run ``work`` in a transaction; again after a deadlock or serialization failure."""
        for attempt in range(1, self._attempts):
            try:
                return self._transaction(work, lock)
            except RETRYABLE:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # desynchronize the rivals
        return self._transaction(work, lock)  # the last attempt raises what it meets

    def _transaction(self, work: Callable[[Tx], T], lock: int | None) -> T:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.transaction():
            if lock is not None:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            return work(PostgresTx(conn))

    async def read(self, work: Callable[[Tx], T]) -> T:
        if self._reader is None:
            raise RuntimeError(f"store {self.name} (schema {self.schema}) is not open")
        return await settle(_submit(self._reader, self._read, work))

    def _read(self, work: Callable[[Tx], T]) -> T:
        for attempt in range(1, self._attempts):
            try:
                return self._snapshot(work)
            except psycopg.OperationalError:
                time.sleep(random.uniform(0, 0.01 * 2**attempt))  # a connection dropped
        return self._snapshot(work)

    def _snapshot(self, work: Callable[[Tx], T]) -> T:
        assert self._pool is not None
        with self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return work(PostgresTx(conn))

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(lambda tx: tx.fetchall(sql, params))


def _shut_down(
    executors: Iterable[ThreadPoolExecutor | None], pool: ConnectionPool[Connection] | None
) -> None:
    for executor in executors:
        if executor is not None:
            executor.shutdown(wait=True)
    if pool is not None:
        pool.close()


def _read_committed(conn: Connection) -> None:
    """Writers' isolation, whatever the server's default_transaction_isolation says."""
    conn.isolation_level = IsolationLevel.READ_COMMITTED


def _submit(executor: ThreadPoolExecutor, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
    """Run ``call(*args)`` in ``executor`` with the caller's context (its current span, say)."""
    context = contextvars.copy_context()
    return asyncio.get_running_loop().run_in_executor(executor, context.run, call, *args)


def postgres_stores(url: str, *, schema_prefix: str = "", **options: Any) -> StoreFactory:
    """One schema per service in the database at ``url`` (``inventory``, ``payment`` ...).

    ``schema_prefix`` keeps several sets of stores apart in one database (tests).
    """

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        schema = f"{schema_prefix}{name}"
        return PostgresStore(name, url, migrations, schema=schema, **options)

    return factory
