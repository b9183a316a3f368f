"""The Postgres adapter against the store protocol, on the session's embedded server.

Interleavings are forced with `threading.Event`s inside ``work`` (it runs in the store's
threads) and, where a transaction must be seen waiting, by watching ``pg_locks``.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from psycopg import errors

from shared.postgres_server import EmbeddedPostgres
from shared.servers import ServerError, free_port
from shared.store.base import Store, StoreFactory, Tx, migrations
from shared.store.postgres import PostgresStore, advisory_key

ITEMS = migrations(
    "test",
    "CREATE TABLE items (sku TEXT PRIMARY KEY, stock INTEGER NOT NULL CHECK (stock >= 0));"
    "CREATE TABLE notes (id {id}, body TEXT NOT NULL, payload {blob})",
)
EVENT_TIMEOUT_S = 30.0
"""A hang guard for threads waiting on an event; never reached when the code is right."""


@pytest_asyncio.fixture
async def store(postgres_store_factory: StoreFactory) -> AsyncIterator[Store]:
    opened = postgres_store_factory("inventory", ITEMS)
    await opened.open()
    yield opened
    await opened.close()


def insert_item(sku: str, stock: int) -> Callable[[Tx], int]:
    return lambda tx: tx.execute("INSERT INTO items (sku, stock) VALUES (?, ?)", (sku, stock))


async def stock_of(store: Store, sku: str) -> int | None:
    rows = await store.query("SELECT stock FROM items WHERE sku = ?", (sku,))
    return int(rows[0]["stock"]) if rows else None


def wait(event: threading.Event) -> None:
    """Block a store thread until the test sets ``event``."""
    if not event.wait(EVENT_TIMEOUT_S):
        raise TimeoutError("the test never set the event")


async def until_set(event: threading.Event) -> None:
    """Wait, off the loop, until a store thread sets ``event``."""
    assert await asyncio.to_thread(event.wait, EVENT_TIMEOUT_S)


async def until_waiting_on(server: EmbeddedPostgres, key: int, waiters: int) -> None:
    """Poll ``pg_locks`` until ``waiters`` sessions wait for the advisory lock ``key``."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    query = (
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = %s AND objid = %s AND objsubid = 1"
    )
    deadline = time.monotonic() + EVENT_TIMEOUT_S
    async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as conn:
        while True:
            cursor = await conn.execute(query, (unsigned >> 32, unsigned & 0xFFFF_FFFF))
            found = await cursor.fetchone()
            if found is not None and found[0] >= waiters:
                return
            assert time.monotonic() < deadline, f"never saw {waiters} waiters on the lock"
            await asyncio.sleep(0.01)


async def test_a_transaction_commits_whole(store: Store) -> None:
    def work(tx: Tx) -> int:
        return insert_item("a", 1)(tx) + insert_item("b", 2)(tx)

    assert await store.run(work) == 2
    assert (await stock_of(store, "a"), await stock_of(store, "b")) == (1, 2)


async def test_a_transaction_that_raises_leaves_nothing_behind(store: Store) -> None:
    def work(tx: Tx) -> None:
        insert_item("a", 1)(tx)
        raise ValueError("rule broken after the first write")

    with pytest.raises(ValueError, match="rule broken"):
        await store.run(work)
    assert await stock_of(store, "a") is None


async def test_a_savepoint_undoes_only_its_own_block(store: Store) -> None:
    def work(tx: Tx) -> None:
        insert_item("kept", 1)(tx)
        with pytest.raises(ValueError), tx.savepoint():
            insert_item("undone", 1)(tx)
            raise ValueError
        insert_item("after", 1)(tx)

    await store.run(work)
    rows = await store.query("SELECT sku FROM items ORDER BY sku")
    assert [row["sku"] for row in rows] == ["after", "kept"]


async def test_a_failed_statement_inside_a_savepoint_keeps_the_transaction_usable(
    store: Store,
) -> None:
    """Postgres aborts the whole transaction on an error; a savepoint confines it."""

    def work(tx: Tx) -> None:
        insert_item("a", 1)(tx)
        with pytest.raises(errors.UniqueViolation), tx.savepoint():
            insert_item("a", 2)(tx)
        tx.execute("UPDATE items SET stock = stock + 10 WHERE sku = ?", ("a",))

    await store.run(work)
    assert await stock_of(store, "a") == 11


async def test_rows_are_read_by_column_name(store: Store) -> None:
    await store.run(insert_item("a", 3))
    row = await store.run(lambda tx: tx.fetchone("SELECT sku, stock * 2 AS doubled FROM items"))
    assert row is not None
    assert (row["sku"], row["doubled"]) == ("a", 6)
    assert await store.run(lambda tx: tx.fetchone("SELECT sku FROM items WHERE sku = 'x'")) is None


async def test_question_marks_are_placeholders_except_inside_quotes_and_percent_is_literal(
    store: Store,
) -> None:
    await store.run(insert_item("50% off?", 5))
    sql = (
        "SELECT '?' AS mark, 'it''s 100%' AS pct, \"sku\" AS name, stock + ? AS more"
        " FROM items WHERE sku LIKE ? -- is this the row?"
    )
    rows = await store.query(sql, (1, "50%"))
    assert rows == [{"mark": "?", "pct": "it's 100%", "name": "50% off?", "more": 6}]


async def test_executemany_runs_once_per_parameter_set(store: Store) -> None:
    rows = [("a", 1), ("b", 2), ("c", 3)]
    await store.run(lambda tx: tx.executemany("INSERT INTO items VALUES (?, ?)", rows))
    assert await store.query("SELECT sum(stock) AS total FROM items") == [{"total": 6}]


async def test_an_upsert_with_greatest_keeps_the_larger_value(store: Store) -> None:
    def upsert(stock: int) -> Callable[[Tx], int]:
        def work(tx: Tx) -> int:
            larger = tx.dialect.greatest("items.stock", "excluded.stock")
            return tx.execute(
                "INSERT INTO items (sku, stock) VALUES (?, ?)"
                f" ON CONFLICT (sku) DO UPDATE SET stock = {larger}",
                ("a", stock),
            )

        return work

    for stock in (5, 3, 8, 2):
        await store.run(upsert(stock))
    assert await stock_of(store, "a") == 8


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
    with pytest.raises(errors.ReadOnlySqlTransaction):
        await store.read(insert_item("a", 1))


async def test_writes_run_read_committed(store: Store) -> None:
    row = await store.run(lambda tx: tx.fetchone("SHOW transaction_isolation"))
    assert row == {"transaction_isolation": "read committed"}


async def test_work_sees_the_callers_context_variables(store: Store) -> None:
    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")
    current.set("the caller's span")
    assert await store.run(lambda tx: current.get()) == "the caller's span"
    assert await store.read(lambda tx: current.get()) == "the caller's span"


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
    async with await psycopg.AsyncConnection.connect(postgres_server.url, autocommit=True) as held:
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


def read_then_insert(
    seen: list[str], opened: threading.Event, go: threading.Event
) -> Callable[[Tx], None]:
    """A step that inserts its row only if it sees none: the race the saga key prevents."""

    def work(tx: Tx) -> None:
        row = tx.fetchone("SELECT stock FROM items WHERE sku = 'saga-1'")
        seen.append("row" if row else "no row")
        opened.set()
        wait(go)
        if row is None:
            insert_item("saga-1", 1)(tx)

    return work


async def test_transactions_with_the_same_key_run_one_after_the_other(
    postgres_server: EmbeddedPostgres, store: Store
) -> None:
    seen: list[str] = []
    first_open, second_open, go = threading.Event(), threading.Event(), threading.Event()
    first = asyncio.ensure_future(store.run(read_then_insert(seen, first_open, go), key="saga-1"))
    await until_set(first_open)
    second_work = read_then_insert(seen, second_open, go)
    second = asyncio.ensure_future(store.run(second_work, key="saga-1"))
    assert isinstance(store, PostgresStore)
    await until_waiting_on(postgres_server, advisory_key("run", store.schema, "saga-1"), 1)
    go.set()
    await asyncio.gather(first, second)
    assert seen == ["no row", "row"]
    assert await stock_of(store, "saga-1") == 1


async def test_without_a_key_a_second_transaction_sees_no_row_while_the_first_is_open(
    store: Store,
) -> None:
    """The control for the test above: the key, not luck, keeps the second one out."""
    seen: list[str] = []
    first_open, go = threading.Event(), threading.Event()
    first = asyncio.ensure_future(store.run(read_then_insert(seen, first_open, go)))
    await until_set(first_open)
    second = await store.run(lambda tx: tx.fetchone("SELECT sku FROM items"))
    go.set()
    await first
    assert (seen, second) == (["no row"], None)


async def test_fifty_racing_decrements_of_a_stock_of_ten_leave_ten_winners(
    postgres_store_factory: StoreFactory,
) -> None:
    racers = 50
    store = postgres_store_factory("inventory", ITEMS)
    assert isinstance(store, PostgresStore)
    racing = PostgresStore(store.name, store.url, ITEMS, schema=store.schema, writers=racers)
    await racing.open()
    all_open = threading.Barrier(racers, timeout=EVENT_TIMEOUT_S)

    def take_one(tx: Tx) -> int:
        all_open.wait()  # every transaction has begun before any decrements
        return tx.execute("UPDATE items SET stock = stock - 1 WHERE sku = ? AND stock >= 1", ("a",))

    try:
        await racing.run(insert_item("a", 10))
        taken = await asyncio.gather(*(racing.run(take_one) for _ in range(racers)))
        assert (sum(taken), await stock_of(racing, "a")) == (10, 0)
    finally:
        await racing.close()


async def test_a_deadlock_is_retried_and_both_transactions_commit(store: Store) -> None:
    await store.run(lambda tx: insert_item("x", 0)(tx) + insert_item("y", 0)(tx))
    holds: dict[str, threading.Event] = {"x": threading.Event(), "y": threading.Event()}
    attempts: list[str] = []

    def cross(first: str, second: str) -> Callable[[Tx], None]:
        def work(tx: Tx) -> None:
            attempts.append(first)
            tx.execute("UPDATE items SET stock = stock + 1 WHERE sku = ?", (first,))
            holds[first].set()
            wait(holds[second])
            tx.execute("UPDATE items SET stock = stock + 1 WHERE sku = ?", (second,))

        return work

    await asyncio.gather(store.run(cross("x", "y")), store.run(cross("y", "x")))
    assert len(attempts) == 3  # one of the two was chosen as the victim and ran again
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
        with pytest.raises(errors.SerializationFailure):
            await store.run(always_conflicts)
        assert len(attempts) == 3
    finally:
        await store.close()


async def test_reads_are_not_blocked_by_writers_holding_every_thread_and_lock(
    store: Store,
) -> None:
    await store.run(insert_item("a", 1))
    holding, release = threading.Event(), threading.Event()

    def hold_the_row(tx: Tx) -> None:
        tx.execute("UPDATE items SET stock = 99 WHERE sku = 'a'")
        holding.set()
        wait(release)

    assert isinstance(store, PostgresStore)
    writers = [asyncio.ensure_future(store.run(hold_the_row)) for _ in range(5)]
    await until_set(holding)
    try:
        read = await asyncio.wait_for(stock_of(store, "a"), EVENT_TIMEOUT_S)
    finally:
        release.set()
        await asyncio.gather(*writers)
    assert (read, await stock_of(store, "a")) == (1, 99)


async def test_cancelling_the_caller_mid_transaction_still_commits_it_whole(
    store: Store,
) -> None:
    started, proceed = threading.Event(), threading.Event()

    def two_rows(tx: Tx) -> None:
        insert_item("first", 1)(tx)
        started.set()
        wait(proceed)
        insert_item("second", 1)(tx)

    task = asyncio.ensure_future(store.run(two_rows))
    await until_set(started)
    task.cancel()
    await asyncio.sleep(0)  # let the cancellation land while the work is still running
    assert not task.done()
    proceed.set()
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


async def test_connections_the_server_dropped_are_replaced_and_the_work_runs_again(
    postgres_server: EmbeddedPostgres, postgres_store_factory: StoreFactory
) -> None:
    """What a Postgres restart leaves in every pool: connections that fail on first use."""
    store = postgres_store_factory(f"dropped_{uuid.uuid4().hex[:8]}", ITEMS)
    assert isinstance(store, PostgresStore)
    await store.open()
    try:
        await store.run(insert_item("before", 1))
        async with await psycopg.AsyncConnection.connect(
            postgres_server.url, autocommit=True
        ) as admin:
            dropped = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (f"saga-{store.name}",),
            )
            assert (await dropped.fetchone() or [0])[0] >= 1

        await store.run(insert_item("after", 2))
        assert (await stock_of(store, "before"), await stock_of(store, "after")) == (1, 2)
    finally:
        await store.close()
