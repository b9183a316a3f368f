"""The Postgres adapter: one schema per service, asyncpg on the event loop, no threads.

Every ``run(work)`` borrows a connection from the store's asyncpg pool of writers and runs
``work`` between ``BEGIN ISOLATION LEVEL READ COMMITTED`` and ``COMMIT``, on the event loop:
``work`` stays a plain function, run in a greenlet (`shared.store.bridge`), and each statement
it runs awaits the driver on the loop while other tasks go on. With a ``key`` the transaction
first takes ``pg_advisory_xact_lock`` on a hash of (schema, key) — in the same round trip as
``BEGIN`` — so a forward step and its compensation for one saga never interleave. The
transaction runs in a task of its own that a cancelled caller waits for (`settle`): it
commits or rolls back whole. Failures follow the store's retry rule (`shared.store.retry`).
Reads borrow from a second pool, in ``READ ONLY, REPEATABLE READ`` transactions: one
snapshot, and MVCC never makes them wait for a writer. Driver errors leave as
`shared.store.errors` classes. Why asyncpg and not psycopg's asyncio API: docs/stores.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeAlias, TypeVar
from urllib.parse import urlsplit

import asyncpg
from asyncpg import Record
from asyncpg.pool import Pool as AsyncpgPool

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
    check_migrations,
)
from shared.store.bridge import call_sync
from shared.store.errors import CommitUnknown, OperationalError, StoreUnavailable
from shared.store.postgres_tx import (
    DIALECT,
    DRIVER_ERRORS,
    Connection,
    PostgresTx,
    fetchall,
    postgres_error,
    to_numbered,
)
from shared.store.retry import RETRY, RetryRule, retrying, settle

T = TypeVar("T")
Pool: TypeAlias = "AsyncpgPool[Record]"

WRITERS = 4
READERS = 2
CONNECT_TIMEOUT_S = 10
WAIT_FOR_CONNECTION_S = 120.0
"""How long a transaction may queue for a pooled connection before it fails."""

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}\Z")
CONNECT_ERRORS: tuple[type[BaseException], ...] = (*DRIVER_ERRORS, TimeoutError)


def advisory_key(*parts: str) -> int:
    """A signed 64-bit advisory lock key, the same in every process (``hash()`` is salted)."""
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def describe(url: str) -> str:
    """host:port/database of a URL, without its password, for error messages."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"


async def _statement(conn: Connection, sql: str) -> None:
    """One statement of the adapter's own (``BEGIN``, ``COMMIT`` ...), errors translated.

    No parameters: the simple query protocol, so ``BEGIN ...; SELECT ...`` is one round trip.
    """
    try:
        await conn.execute(sql)
    except DRIVER_ERRORS as error:
        raise postgres_error(error, conn) from error


async def _commit(conn: Connection) -> None:
    """``COMMIT``; a connection lost on the way leaves the outcome unknown (`CommitUnknown`)."""
    try:
        await _statement(conn, "COMMIT")
    except StoreUnavailable as error:
        raise CommitUnknown(f"connection lost while committing: {error}", code=error.code) from (
            error.__cause__
        )


async def _rollback(conn: Connection) -> None:
    """End a failed transaction; a closed connection needs none (the pool replaces it)."""
    if not conn.is_closed():
        with contextlib.suppress(*DRIVER_ERRORS):
            await conn.execute("ROLLBACK")


async def _no_reset(conn: Connection) -> None:
    """What a connection needs when it goes back to the pool: nothing. Every transaction
    ends in COMMIT or ROLLBACK (asyncpg rolls back one left open) and no session state is
    ever set, so asyncpg's default reset query would be one more round trip per transaction."""


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

    async def open(self, *, migrate: bool = True) -> None:
        """Connect, create the schema if missing and apply pending migrations, both under a
        per-schema advisory lock so several processes may open the same store at once; with
        ``migrate=False`` only check that the schema is current (`SchemaBehind` if not)."""
        await self._reachable()
        writers, readers = self._sizes
        try:
            self._writers = await self._open_pool(writers)
            self._readers = await self._open_pool(readers, read_only=True)
            if migrate:
                await self._run(self._migrate, advisory_key("migrate", self.schema))
            else:
                await self.read(lambda tx: check_migrations(tx, self.migrations, self.name))
        except BaseException:
            await self.close()
            raise

    def _connection_options(self) -> dict[str, Any]:
        return {
            "server_settings": {
                "search_path": self.schema,
                "application_name": f"saga-{self.name}",
            },
            "timeout": CONNECT_TIMEOUT_S,
        }

    async def _reachable(self) -> None:
        """One direct connection that, if it fails, says why in one line (the pool would
        raise the same error with a traceback through its own code)."""
        try:
            conn = await asyncpg.connect(self.url, **self._connection_options())
        except CONNECT_ERRORS as error:
            reason = (str(error).strip().splitlines() or [type(error).__name__])[-1]
            raise ServerError(
                f"cannot connect to Postgres at {describe(self.url)} ({reason}); "
                "start the server or fix SAGA_POSTGRES_URL"
            ) from None
        await conn.close()

    async def _open_pool(self, size: int, *, read_only: bool = False) -> Pool:
        options = self._connection_options()
        if read_only:  # a write through ``query`` fails as one inside ``read`` does
            options["server_settings"]["default_transaction_read_only"] = "on"
        try:
            return await asyncpg.create_pool(
                self.url, min_size=1, max_size=size, reset=_no_reset, **options
            )
        except CONNECT_ERRORS as error:
            raise StoreUnavailable(f"no connection to {describe(self.url)}: {error}") from error

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
        """One statement: one round trip, no ``BEGIN``/``COMMIT`` around it (a statement sees
        one snapshot by itself; the readers' sessions are read-only by default)."""
        pool = self._pool(self._readers)
        statement = functools.partial(_single_read, pool, to_numbered(sql), params)
        attempt = functools.partial(self._attempt, pool, statement)
        return await retrying(self._retry, self.name, attempt)

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
            await pool.expire_connections()  # a restart broke them all: reconnect each on use
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


async def _single_read(pool: Pool, sql: str, params: Params) -> list[Row]:
    async with _borrowed(pool) as conn:
        try:
            return await fetchall(conn, sql, params)
        except DRIVER_ERRORS as error:
            raise postgres_error(error, conn) from error


@contextlib.asynccontextmanager
async def _borrowed(pool: Pool) -> AsyncIterator[Connection]:
    """A pooled connection; one that met `StoreUnavailable` is dropped, never reused."""
    try:
        conn = await pool.acquire(timeout=WAIT_FOR_CONNECTION_S)
    except TimeoutError as error:
        raise OperationalError(f"no connection free in {WAIT_FOR_CONNECTION_S:.0f} s") from error
    except DRIVER_ERRORS as error:  # a new connection could not be made
        raise postgres_error(error) from error
    try:
        yield conn
    except StoreUnavailable:
        with contextlib.suppress(*DRIVER_ERRORS):  # the pool may have let go of it already
            conn.terminate()  # never back into the pool half alive: the release drops it
        raise
    finally:
        with contextlib.suppress(*DRIVER_ERRORS):
            await pool.release(conn)


async def _end_read(conn: Connection) -> None:
    await _statement(conn, "COMMIT")


async def _transaction(
    pool: Pool,
    begin: str,
    work: Callable[[Tx], T],
    end: Callable[[Connection], Awaitable[None]],
) -> T:
    async with _borrowed(pool) as conn:
        await _statement(conn, begin)
        try:
            result = await call_sync(work, PostgresTx(conn))
        except BaseException:
            await _rollback(conn)
            raise
        await end(conn)
        return result


def postgres_stores(url: str, *, schema_prefix: str = "", **options: Any) -> StoreFactory:
    """One schema per service in the database at ``url`` (``inventory``, ``payment`` ...).

    ``schema_prefix`` keeps several sets of stores apart in one database (tests).
    """

    def factory(name: str, migrations: Sequence[Migration]) -> Store:
        schema = f"{schema_prefix}{name}"
        return PostgresStore(name, url, migrations, schema=schema, **options)

    return factory
