"""The Postgres adapter: one schema per service, psycopg 3's asyncio API, no threads.

Every ``run(work)`` borrows a connection from the store's asyncio pool of writers and runs
``work`` between ``BEGIN ISOLATION LEVEL READ COMMITTED`` and ``COMMIT``, on the event loop:
``work`` stays a plain function, run in a greenlet (`shared.store.bridge`), and each statement
it runs awaits the driver on the loop while other tasks go on. With a ``key`` the transaction
first takes ``pg_advisory_xact_lock`` on a hash of (schema, key) — in the same round trip as
``BEGIN`` — so a forward step and its compensation for one saga never interleave. The
transaction runs in a task of its own that a cancelled caller waits for (`settle`): it
commits or rolls back whole. Failures follow the store's retry rule (`shared.store.retry`).
Reads borrow from a second pool, in ``READ ONLY, REPEATABLE READ`` transactions: one
snapshot, and MVCC never makes them wait for a writer. Driver errors leave as
`shared.store.errors` classes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

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
from shared.store.bridge import call_sync, wait
from shared.store.errors import (
    CommitUnknown,
    DatabaseError,
    DataError,
    IntegrityError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    StoreError,
    StoreUnavailable,
    for_sqlstate,
)
from shared.store.retry import RETRY, RetryRule, retrying, settle

T = TypeVar("T")
Connection = psycopg.AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Connection]

WRITERS = 4
READERS = 2
CONNECT_TIMEOUT_S = 10
WAIT_FOR_CONNECTION_S = 120.0
"""How long a transaction may queue for a pooled connection before it fails."""

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
_TOKENS = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|[?%]""", re.DOTALL)
_DRIVER_CLASSES: tuple[tuple[type[psycopg.Error], type[StoreError]], ...] = (
    (psycopg.IntegrityError, IntegrityError),
    (psycopg.DataError, DataError),
    (psycopg.ProgrammingError, ProgrammingError),
    (psycopg.NotSupportedError, NotSupportedError),
    (psycopg.InternalError, InternalError),
    (psycopg.OperationalError, StoreUnavailable),  # no SQLSTATE: the connection failed
    (psycopg.InterfaceError, StoreUnavailable),  # "the connection is closed"
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


DIALECT = PostgresDialect()


def postgres_error(error: psycopg.Error) -> StoreError:
    """The store's error for a psycopg one: by SQLSTATE, else by the driver's class."""
    kind = for_sqlstate(error.sqlstate)
    if kind is None:
        kind = next((ours for theirs, ours in _DRIVER_CLASSES if isinstance(error, theirs)), None)
    message = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return (kind or DatabaseError)(message, code=error.sqlstate)


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


async def _execute(conn: Connection, sql: str, params: Params) -> int:
    return (await conn.execute(sql, params)).rowcount


async def _executemany(conn: Connection, sql: str, params: list[Params]) -> None:
    async with conn.cursor() as cursor:
        await cursor.executemany(sql, params)


async def _fetchone(conn: Connection, sql: str, params: Params) -> Row | None:
    return await (await conn.execute(sql, params)).fetchone()


async def _fetchall(conn: Connection, sql: str, params: Params) -> list[Row]:
    return list(await (await conn.execute(sql, params)).fetchall())


class PostgresTx:
    """A transaction on one pooled connection, used synchronously by ``work``: each call
    waits, in ``work``'s greenlet, for the driver's coroutine the loop runs."""

    dialect: Dialect = DIALECT

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._savepoints = itertools.count(1)

    def execute(self, sql: str, params: Params = ()) -> int:
        return _driver(_execute(self._conn, to_pyformat(sql), tuple(params)))

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        _driver(_executemany(self._conn, to_pyformat(sql), [tuple(p) for p in params]))

    def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        return _driver(_fetchone(self._conn, to_pyformat(sql), tuple(params)))

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        return _driver(_fetchall(self._conn, to_pyformat(sql), tuple(params)))

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


def _driver(call: Awaitable[T]) -> T:
    try:
        return wait(call)
    except psycopg.Error as error:
        raise postgres_error(error) from error


async def _statement(conn: Connection, sql: str) -> None:
    """One statement of the adapter's own (``BEGIN``, ``COMMIT`` ...), errors translated.

    No parameters: the simple query protocol, so ``BEGIN ...; SELECT ...`` is one round trip.
    """
    try:
        await conn.execute(sql)
    except psycopg.Error as error:
        raise postgres_error(error) from error


async def _commit(conn: Connection) -> None:
    """``COMMIT``; a connection lost on the way leaves the outcome unknown (`CommitUnknown`)."""
    try:
        await _statement(conn, "COMMIT")
    except StoreUnavailable as error:
        raise CommitUnknown(f"connection lost while committing: {error}", code=error.code) from (
            error.__cause__
        )


async def _rollback(conn: Connection) -> None:
    """End a failed transaction; a broken connection needs none (the pool discards it)."""
    if not conn.broken and not conn.closed:
        with contextlib.suppress(psycopg.Error):
            await conn.execute("ROLLBACK")


class PostgresStore:
    """A service's own schema in a Postgres database; nothing is opened until `open()`.

    Two asyncio pools: ``writers`` connections for ``run``, ``readers`` for ``read``, so a
    read always finds a connection however many writers wait on locks. ``work`` runs with
    the caller's context variables, so spans it starts keep the caller's span as parent.
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
        attempts: int | None = None,
        retry: RetryRule = RETRY,
    ) -> None:
        self.name = name
        self.url = url
        self.schema = schema or name
        if not _SCHEMA.match(self.schema):
            raise ValueError(f"schema name {self.schema!r}: use lower-case letters, digits and _")
        self.migrations = list(migrations)
        self._sizes = (writers, readers)
        self._retry = retry if attempts is None else RetryRule(attempts, retry.first_pause_s)
        self._writers: Pool | None = None
        self._readers: Pool | None = None
        self._running: set[asyncio.Task[Any]] = set()

    async def open(self) -> None:
        """Connect, create the schema if missing and apply pending migrations, both under a
        per-schema advisory lock so several processes may open the same store at once."""
        await self._reachable()
        writers, readers = self._sizes
        try:
            self._writers = await self._open_pool("w", writers)
            self._readers = await self._open_pool("r", readers)
            await self._run(self._migrate, advisory_key("migrate", self.schema))
        except BaseException:
            await self.close()
            raise

    def _connection_options(self) -> dict[str, Any]:
        return {
            "autocommit": True,  # transactions are explicit: BEGIN ... COMMIT
            "row_factory": dict_row,
            "options": f"-c search_path={self.schema}",
            "application_name": f"saga-{self.name}",
            "connect_timeout": CONNECT_TIMEOUT_S,
        }

    async def _reachable(self) -> None:
        """One direct connection that, if it fails, says why in one line (the pool itself
        would only time out)."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, **self._connection_options())
        except psycopg.OperationalError as error:
            reason = (str(error).strip().splitlines() or ["no answer"])[-1]
            raise ServerError(
                f"cannot connect to Postgres at {describe(self.url)} ({reason}); "
                "start the server or fix SAGA_POSTGRES_URL"
            ) from None
        await conn.close()

    async def _open_pool(self, role: str, size: int) -> Pool:
        pool: Pool = AsyncConnectionPool(
            self.url,
            connection_class=Connection,
            kwargs=self._connection_options(),
            min_size=1,
            max_size=size,
            num_workers=1,
            timeout=WAIT_FOR_CONNECTION_S,
            name=f"saga-{self.name}-{role}",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except PoolTimeout as error:
            raise StoreUnavailable(f"no connection to {describe(self.url)}: {error}") from error
        return pool

    def _migrate(self, tx: Tx) -> list[Migration]:
        tx.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        return apply_migrations(tx, self.migrations, time.time())

    async def close(self) -> None:
        """Let started transactions finish, then close every connection."""
        pools = (self._writers, self._readers)
        self._writers = self._readers = None
        if self._running:
            await asyncio.wait(set(self._running))
        for pool in pools:
            if pool is not None:
                await pool.close()

    async def run(self, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        lock = None if key is None else advisory_key("run", self.schema, key)
        return await self._run(work, lock)

    async def _run(self, work: Callable[[Tx], T], lock: int | None) -> T:
        pool = self._pool(self._writers)
        attempt = functools.partial(self._attempt, pool, _write(pool, work, lock))
        return await retrying(self._retry, self.name, attempt)

    async def read(self, work: Callable[[Tx], T]) -> T:
        pool = self._pool(self._readers)
        attempt = functools.partial(self._attempt, pool, _snapshot(pool, work))
        return await retrying(self._retry, self.name, attempt)

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        return await self.read(lambda tx: tx.fetchall(sql, params))

    def _pool(self, pool: Pool | None) -> Pool:
        if pool is None:
            raise RuntimeError(f"store {self.name} (schema {self.schema}) is not open")
        return pool

    async def _attempt(self, pool: Pool, transaction: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """One try of a transaction, in a task of its own: a cancelled caller waits for it."""
        task = asyncio.ensure_future(transaction())
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await settle(task)
        except StoreUnavailable:
            await pool.check()  # drop every connection a server restart broke, not just this one
            raise


def _write(
    pool: Pool, work: Callable[[Tx], T], lock: int | None
) -> Callable[[], Coroutine[Any, Any, T]]:
    begin = "BEGIN ISOLATION LEVEL READ COMMITTED"
    if lock is not None:
        begin += f"; SELECT pg_advisory_xact_lock({int(lock)})"
    return functools.partial(_transaction, pool, begin, work, _commit)


def _snapshot(pool: Pool, work: Callable[[Tx], T]) -> Callable[[], Coroutine[Any, Any, T]]:
    begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
    return functools.partial(_transaction, pool, begin, work, _end_read)


async def _end_read(conn: Connection) -> None:
    await _statement(conn, "COMMIT")


async def _transaction(
    pool: Pool,
    begin: str,
    work: Callable[[Tx], T],
    end: Callable[[Connection], Awaitable[None]],
) -> T:
    try:
        async with pool.connection() as conn:
            await _statement(conn, begin)
            try:
                result = await call_sync(work, PostgresTx(conn))
            except BaseException:
                await _rollback(conn)
                raise
            await end(conn)
            return result
    except PoolTimeout as error:
        raise OperationalError(f"no connection free in the pool: {error}") from error


def postgres_stores(url: str, *, schema_prefix: str = "", **options: Any) -> StoreFactory:
    """One schema per service in the database at ``url`` (``inventory``, ``payment`` ...).

    ``schema_prefix`` keeps several sets of stores apart in one database (tests).
    """

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        schema = f"{schema_prefix}{name}"
        return PostgresStore(name, url, migrations, schema=schema, **options)

    return factory
