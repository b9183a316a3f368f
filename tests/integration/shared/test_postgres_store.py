"""What only the Postgres adapter does, on the session's embedded server: schemas, isolation
levels, advisory locks, retries of real deadlocks and dropped connections, no threads.

The protocol itself (commit, rollback, savepoints, errors, cancels ...) is the store contract
(`test_store.py`), run on every backend. ``work`` runs on the event loop here, so a test never
blocks it on a thread event: transactions are held at a `Gate` — an advisory lock the test
holds — and seen waiting in ``pg_locks``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import psycopg
import pytest
import pytest_asyncio

from shared.postgres_server import EmbeddedPostgres
from shared.servers import ServerError, free_port
from shared.store import CommitUnknown, Conflict, ProgrammingError
from shared.store.base import Store, StoreFactory, Tx, migrations
from shared.store.postgres import PostgresStore, advisory_key

ITEMS = migrations(
    "test",
    "CREATE TABLE items (sku TEXT PRIMARY KEY, stock INTEGER NOT NULL CHECK (stock >= 0));"
    "CREATE TABLE notes (id {id}, body TEXT NOT NULL, payload {blob})",
)
WAIT_S = 30.0
"""A hang guard for something that happens at once when the code is right."""


@pytest_asyncio.fixture
async def store(postgres_store_factory: StoreFactory) -> AsyncIterator[PostgresStore]:
    opened = postgres_store_factory("inventory", ITEMS)
    assert isinstance(opened, PostgresStore)
    await opened.open()
    yield opened
    await opened.close()


def insert_item(sku: str, stock: int) -> Callable[[Tx], int]:
    return lambda tx: tx.execute("INSERT INTO items (sku, stock) VALUES (?, ?)", (sku, stock))


async def stock_of(store: Store, sku: str) -> int | None:
    rows = await store.query("SELECT stock FROM items WHERE sku = ?", (sku,))
    return int(rows[0]["stock"]) if rows else None


async def admin(server: EmbeddedPostgres) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(server.url, autocommit=True)


async def until_waiting_on(server: EmbeddedPostgres, key: int, waiters: int) -> None:
    """Poll ``pg_locks`` until ``waiters`` sessions wait for the advisory lock ``key``."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s AND objid = %s AND objsubid = 1"
    )
    deadline = time.monotonic() + WAIT_S
    async with await admin(server) as conn:
        while True:
            cursor = await conn.execute(query, (unsigned >> 32, unsigned & 0xFFFF_FFFF))
            found = await cursor.fetchone()
            if found is not None and found[0] >= waiters:
                return
            assert time.monotonic() < deadline, f"never saw {waiters} waiters on the lock"
            await asyncio.sleep(0.01)


class Gate:
    """Holds transactions at a point of their ``work`` until the test opens it: ``work`` calls
    `pass_through`, which waits for an advisory lock the test holds (the driver waits on the
    loop, so the loop keeps running)."""

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server
        self.key = advisory_key("gate", uuid.uuid4().hex)
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def close(self) -> None:
        self._conn = await admin(self.server)
        await self._conn.execute("SELECT pg_advisory_lock(%s)", (self.key,))

    def pass_through(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock_shared(?)", (self.key,))

    async def waiting(self, count: int) -> None:
        await until_waiting_on(self.server, self.key, count)

    async def open(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # the session's advisory lock goes with it
            self._conn = None


@pytest_asyncio.fixture
async def gate(postgres_server: EmbeddedPostgres) -> AsyncIterator[Gate]:
    closed = Gate(postgres_server)
    await closed.close()
    yield closed
    await closed.open()


async def test_ddl_placeholders_give_generated_ids_and_binary_columns(store: Store) -> None:
    def work(tx: Tx) -> list[int]:
        ids = []
        for body, payload in (("one", b"\x00\xff"), ("two", b"")):
            row = tx.fetchone(
                "INSERT INTO notes (body, payload) VALUES (?, ?) RETURNING id", (body, payload)
            )
            assert row is not None
            ids.append(int(row["id"]))
        return ids

    first, second = await store.run(work)
    assert second > first
    assert await store.query("SELECT payload FROM notes WHERE id = ?", (first,)) == [
        {"payload": b"\x00\xff"}
    ]


async def test_each_store_has_a_schema_of_its_own(postgres_store_factory: StoreFactory) -> None:
    inventory = postgres_store_factory("inventory", ITEMS)
    payment = postgres_store_factory("payment", ITEMS)
    await inventory.open()
    await payment.open()
    try:
        await inventory.run(insert_item("a", 1))
        assert await stock_of(payment, "a") is None
        schema = await payment.query("SELECT current_schema() AS name")
        assert schema[0]["name"].endswith("_payment")
    finally:
        await inventory.close()
        await payment.close()


async def test_reads_run_read_only_on_one_snapshot(store: Store) -> None:
    def settings(tx: Tx) -> tuple[Any, ...]:
        row = tx.fetchone(
            "SELECT current_setting('transaction_isolation') AS isolation,"
            " current_setting('transaction_read_only') AS read_only"
        )
        assert row is not None
        return row["isolation"], row["read_only"]

    assert await store.read(settings) == ("repeatable read", "on")
    with pytest.raises(ProgrammingError) as caught:
        await store.read(insert_item("a", 1))
    assert isinstance(caught.value.__cause__, asyncpg.ReadOnlySQLTransactionError)


async def test_writes_run_read_committed(store: Store) -> None:
    row = await store.run(lambda tx: tx.fetchone("SHOW transaction_isolation"))
    assert row == {"transaction_isolation": "read committed"}


async def test_the_store_runs_its_transactions_without_threads(store: Store) -> None:
    before = set(threading.enumerate())
    await asyncio.gather(*(store.run(insert_item(f"sku-{n}", n)) for n in range(20)))
    await asyncio.gather(*(stock_of(store, f"sku-{n}") for n in range(20)))
    assert set(threading.enumerate()) == before


async def test_two_stores_opening_at_once_apply_each_migration_once(
    postgres_server: EmbeddedPostgres, postgres_store_factory: StoreFactory
) -> None:
    not_idempotent = migrations(
        "counter", "CREATE TABLE counter (n INTEGER NOT NULL); INSERT INTO counter VALUES (1)"
    )
    first = postgres_store_factory("orders", not_idempotent)
    second = postgres_store_factory("orders", not_idempotent)
    assert isinstance(first, PostgresStore)
    lock = advisory_key("migrate", first.schema)
    async with await admin(postgres_server) as held:
        await held.execute("SELECT pg_advisory_lock(%s)", (lock,))
        opening = asyncio.gather(first.open(), second.open())
        await until_waiting_on(postgres_server, lock, waiters=2)
        await held.execute("SELECT pg_advisory_unlock(%s)", (lock,))
        await opening
    try:
        assert await first.query("SELECT n FROM counter") == [{"n": 1}]
        applied = await second.query("SELECT component, version FROM schema_migrations")
        assert applied == [{"component": "counter", "version": 1}]
    finally:
        await first.close()
        await second.close()


def read_then_insert(seen: list[str], gate: Gate) -> Callable[[Tx], None]:
    """A step that inserts its row only if it sees none: the race the saga key prevents."""

    def work(tx: Tx) -> None:
        row = tx.fetchone("SELECT stock FROM items WHERE sku = 'saga-1'")
        seen.append("row" if row else "no row")
        gate.pass_through(tx)
        if row is None:
            insert_item("saga-1", 1)(tx)

    return work


async def test_transactions_with_the_same_key_run_one_after_the_other(
    postgres_server: EmbeddedPostgres, store: PostgresStore, gate: Gate
) -> None:
    seen: list[str] = []
    first = asyncio.ensure_future(store.run(read_then_insert(seen, gate), key="saga-1"))
    await gate.waiting(1)
    second = asyncio.ensure_future(store.run(read_then_insert(seen, gate), key="saga-1"))
    await until_waiting_on(postgres_server, advisory_key("run", store.schema, "saga-1"), 1)
    await gate.open()
    await asyncio.gather(first, second)
    assert seen == ["no row", "row"]
    assert await stock_of(store, "saga-1") == 1


async def test_without_a_key_a_second_transaction_sees_no_row_while_the_first_is_open(
    store: Store, gate: Gate
) -> None:
    """The control for the test above: the key, not luck, keeps the second one out."""
    seen: list[str] = []
    first = asyncio.ensure_future(store.run(read_then_insert(seen, gate)))
    await gate.waiting(1)
    second = await store.run(lambda tx: tx.fetchone("SELECT sku FROM items"))
    await gate.open()
    await first
    assert (seen, second) == (["no row"], None)


async def test_fifty_racing_decrements_of_a_stock_of_ten_leave_ten_winners(
    store: PostgresStore, gate: Gate
) -> None:
    racers = 50
    racing = PostgresStore(store.name, store.url, ITEMS, schema=store.schema, writers=racers)
    await racing.open()

    def take_one(tx: Tx) -> int:
        gate.pass_through(tx)  # every transaction has begun before any decrements
        return tx.execute("UPDATE items SET stock = stock - 1 WHERE sku = ? AND stock >= 1", ("a",))

    try:
        await racing.run(insert_item("a", 10))
        taken = asyncio.gather(*(racing.run(take_one) for _ in range(racers)))
        await gate.waiting(racers)
        await gate.open()
        assert (sum(await taken), await stock_of(racing, "a")) == (10, 0)
    finally:
        await racing.close()


async def test_a_deadlock_is_retried_and_both_transactions_commit(
    store: Store, gate: Gate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.store")
    await store.run(lambda tx: insert_item("x", 0)(tx) + insert_item("y", 0)(tx))
    attempts: list[str] = []

    def cross(first: str, second: str) -> Callable[[Tx], None]:
        def work(tx: Tx) -> None:
            attempts.append(first)
            tx.execute("UPDATE items SET stock = stock + 1 WHERE sku = ?", (first,))
            gate.pass_through(tx)  # both hold their first row before either wants the second
            tx.execute("UPDATE items SET stock = stock + 1 WHERE sku = ?", (second,))

        return work

    both = asyncio.gather(store.run(cross("x", "y")), store.run(cross("y", "x")))
    await gate.waiting(2)
    await gate.open()
    await both
    # One of the two was chosen as the victim and ran again. Its retry can, rarely, take its
    # first row back before the winner's woken backend does, and deadlock once more.
    retries = [r.getMessage() for r in caplog.records if "again" in r.getMessage()]
    assert retries and all("[40P01]" in message for message in retries)
    assert len(attempts) == 2 + len(retries)
    assert (await stock_of(store, "x"), await stock_of(store, "y")) == (2, 2)


async def test_retries_stop_after_the_configured_attempts(
    postgres_store_factory: StoreFactory,
) -> None:
    base = postgres_store_factory("payment", ITEMS)
    assert isinstance(base, PostgresStore)
    store = PostgresStore(base.name, base.url, ITEMS, schema=base.schema, attempts=3)
    await store.open()
    attempts: list[int] = []

    def always_conflicts(tx: Tx) -> None:
        attempts.append(1)
        tx.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")

    try:
        with pytest.raises(Conflict) as caught:
            await store.run(always_conflicts)
        assert len(attempts) == 3
        assert caught.value.code == "40001"
        assert isinstance(caught.value.__cause__, asyncpg.SerializationError)
    finally:
        await store.close()


async def test_reads_are_not_blocked_by_writers_holding_every_connection_and_lock(
    store: Store, gate: Gate
) -> None:
    await store.run(insert_item("a", 1))

    def hold_the_row(tx: Tx) -> None:
        tx.execute("UPDATE items SET stock = 99 WHERE sku = 'a'")
        gate.pass_through(tx)

    writers = asyncio.gather(*(store.run(hold_the_row) for _ in range(5)))
    await gate.waiting(1)  # one holds the row and waits; the others queue for it or the pool
    try:
        read = await asyncio.wait_for(stock_of(store, "a"), WAIT_S)
    finally:
        await gate.open()
        await writers
    assert (read, await stock_of(store, "a")) == (1, 99)


async def test_cancelling_the_caller_mid_transaction_still_commits_it_whole(
    store: Store, gate: Gate
) -> None:
    def two_rows(tx: Tx) -> None:
        insert_item("first", 1)(tx)
        gate.pass_through(tx)
        insert_item("second", 1)(tx)

    task = asyncio.ensure_future(store.run(two_rows))
    await gate.waiting(1)
    task.cancel()
    await asyncio.sleep(0)  # let the cancellation land while the work is still running
    assert not task.done()
    await gate.open()
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = await store.query("SELECT sku FROM items ORDER BY sku")
    assert [row["sku"] for row in rows] == ["first", "second"]


async def test_an_unreachable_server_is_a_one_line_error() -> None:
    store = PostgresStore("inventory", f"postgresql://postgres@127.0.0.1:{free_port()}/saga")
    with pytest.raises(ServerError) as caught:
        await store.open()
    message = str(caught.value)
    assert "\n" not in message
    assert "cannot connect to Postgres at 127.0.0.1:" in message
    assert "SAGA_POSTGRES_URL" in message


TERMINATE = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s"
)


async def terminate(
    server: EmbeddedPostgres, store: PostgresStore, *, waiting: bool = False
) -> int:
    """Drop the store's sessions (only those waiting for a lock, with ``waiting``)."""
    query = TERMINATE + " AND wait_event_type = 'Lock'" if waiting else TERMINATE
    async with await admin(server) as conn:
        dropped = await conn.execute(query, (f"saga-{store.name}",))
        return int((await dropped.fetchone() or [0])[0])


async def test_connections_the_server_dropped_are_replaced_and_the_work_runs_again(
    postgres_server: EmbeddedPostgres, postgres_store_factory: StoreFactory
) -> None:
    """What a Postgres restart leaves in every pool: connections that fail on first use."""
    store = postgres_store_factory(f"dropped_{uuid.uuid4().hex[:8]}", ITEMS)
    assert isinstance(store, PostgresStore)
    await store.open()
    try:
        await store.run(insert_item("before", 1))
        assert await terminate(postgres_server, store) >= 1

        await store.run(insert_item("after", 2))
        assert (await stock_of(store, "before"), await stock_of(store, "after")) == (1, 2)
    finally:
        await store.close()


WAIT_AT_COMMIT = (
    "CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " PERFORM pg_advisory_xact_lock_shared(CAST(TG_ARGV[0] AS BIGINT)); RETURN NULL; END $$",
    "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON notes"
    " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit('{key}')",
)
"""A deferred trigger that, at ``COMMIT``, waits for the advisory lock given as its argument."""


async def test_a_connection_lost_while_committing_is_commit_unknown_and_not_run_again(
    postgres_server: EmbeddedPostgres, store: PostgresStore, gate: Gate
) -> None:
    """A deferred trigger holds the ``COMMIT`` itself at the gate; the test then drops the
    session: the client cannot know whether the commit happened, so it must not repeat it."""

    def install(tx: Tx) -> None:
        for statement in WAIT_AT_COMMIT:
            tx.execute(statement.replace("{key}", str(gate.key)))

    await store.run(install)
    attempts: list[int] = []

    def note(tx: Tx) -> None:
        attempts.append(1)
        tx.execute("INSERT INTO notes (body) VALUES ('once')")

    committing = asyncio.ensure_future(store.run(note))
    await gate.waiting(1)
    assert await terminate(postgres_server, store, waiting=True) == 1
    with pytest.raises(CommitUnknown):
        await committing
    assert len(attempts) == 1
