"""The store contract: one abstract suite, run over SQLite, Postgres and the in-memory store.

`StoreContract` is written against the `Store` protocol only; each backend's class below
subclasses it and says how to build its stores (the eventsourcing library's pattern of
abstract recorder test cases), so a new adapter — or the unit tests' fake — passes the same
suite before any service runs on it. `OtherWriterContract` adds what needs a second
connection to the same database (a lock held by another process or session): SQLite and
Postgres only, since the memory store has one connection in one process by construction.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import itertools
import logging
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest

from shared.store import (
    CommitUnknown,
    Conflict,
    IntegrityError,
    Migration,
    ProgrammingError,
    SchemaBehind,
    Store,
    StoreFactory,
    Tx,
    migrations,
)
from shared.store.memory import memory_stores
from shared.store.postgres import PostgresStore
from shared.store.sqlite import SqliteStore, sqlite_stores

ENTRIES = "CREATE TABLE entries (id {id}, name TEXT NOT NULL UNIQUE, amount INTEGER NOT NULL)"
LEDGER = migrations("ledger", ENTRIES)
COUNTER = migrations("counter", "CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")
WAIT_S = 20.0
"""A hang guard: how long a test waits for something that happens at once when all is well."""


def insert(tx: Tx, name: str, amount: int = 1) -> int:
    return tx.execute("INSERT INTO entries (name, amount) VALUES (?, ?)", (name, amount))


def insert_blob(tx: Tx, data: bytes) -> int:
    return tx.execute("INSERT INTO blobs (b) VALUES (?)", (data,))


async def names(store: Store) -> list[str]:
    rows = await store.query("SELECT name FROM entries ORDER BY name")
    return [row["name"] for row in rows]


async def amount_of(store: Store, name: str) -> int:
    rows = await store.query("SELECT amount FROM entries WHERE name = ?", (name,))
    return int(rows[0]["amount"])


async def applied(store: Store) -> list[tuple[str, int]]:
    rows = await store.query(
        "SELECT component, version FROM schema_migrations ORDER BY component, version"
    )
    return [(row["component"], row["version"]) for row in rows]


class StoreContract:
    """What every `Store` does; subclasses provide ``factory``."""

    @pytest.fixture
    def factory(self) -> StoreFactory:
        raise NotImplementedError("each backend's class builds its stores")

    @pytest.fixture
    async def store(self, factory: StoreFactory) -> AsyncIterator[Store]:
        opened = factory("ledger", LEDGER)
        await opened.open()
        yield opened
        await opened.close()

    async def test_work_that_returns_commits_every_statement_and_hands_back_its_result(
        self, store: Store
    ) -> None:
        def work(tx: Tx) -> int:
            return insert(tx, "a") + insert(tx, "b")

        assert await store.run(work, key="s1") == 2
        assert await names(store) == ["a", "b"]

    async def test_work_that_raises_rolls_back_every_statement_and_the_error_reaches_the_caller(
        self, store: Store
    ) -> None:
        def work(tx: Tx) -> None:
            insert(tx, "a")
            insert(tx, "b")
            raise LookupError("the state change failed")

        with pytest.raises(LookupError, match="the state change failed"):
            await store.run(work)
        assert await names(store) == []

    async def test_a_savepoint_undoes_its_block_and_keeps_the_rest_of_the_transaction(
        self, store: Store
    ) -> None:
        def work(tx: Tx) -> None:
            insert(tx, "kept")
            with pytest.raises(ValueError), tx.savepoint():
                insert(tx, "undone")
                raise ValueError("business rule said no")
            with tx.savepoint():
                insert(tx, "also kept")

        await store.run(work)
        assert await names(store) == ["also kept", "kept"]

    async def test_a_failed_statement_inside_a_savepoint_keeps_the_transaction_usable(
        self, store: Store
    ) -> None:
        """Postgres aborts the whole transaction on an error; a savepoint confines it."""

        def work(tx: Tx) -> None:
            insert(tx, "a")
            with pytest.raises(IntegrityError), tx.savepoint():
                insert(tx, "a", 2)
            tx.execute("UPDATE entries SET amount = amount + 10 WHERE name = ?", ("a",))

        await store.run(work)
        assert await amount_of(store, "a") == 11

    async def test_database_errors_are_the_stores_own_classes_chained_from_the_drivers(
        self, store: Store
    ) -> None:
        await store.run(lambda tx: insert(tx, "a"))
        with pytest.raises(IntegrityError) as duplicate:
            await store.run(lambda tx: insert(tx, "a"))
        with pytest.raises(ProgrammingError) as no_table:
            await store.run(lambda tx: tx.execute("UPDATE missing SET x = 1"))
        with pytest.raises(ProgrammingError) as write_in_read:
            await store.read(lambda tx: insert(tx, "b"))
        with pytest.raises(ProgrammingError) as write_in_query:
            await store.query("INSERT INTO entries (name, amount) VALUES (?, ?)", ("c", 1))

        for caught in (duplicate, no_table, write_in_read, write_in_query):
            driver = caught.value.__cause__
            assert isinstance(driver, sqlite3.Error | asyncpg.PostgresError), driver
            assert caught.value.code
        assert await names(store) == ["a"]

    async def test_rows_are_read_by_column_name_and_writes_count_the_rows_they_changed(
        self, store: Store
    ) -> None:
        def work(tx: Tx) -> tuple[int, int, object, object]:
            tx.executemany(
                "INSERT INTO entries (name, amount) VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3)]
            )
            changed = tx.execute("UPDATE entries SET amount = amount + 10 WHERE amount >= ?", (2,))
            untouched = tx.execute("UPDATE entries SET amount = 0 WHERE name = ?", ("zzz",))
            total = tx.fetchone("SELECT count(*) AS n, sum(amount) AS total FROM entries")
            missing = tx.fetchone("SELECT name FROM entries WHERE name = ?", ("zzz",))
            return changed, untouched, total, missing

        changed, untouched, total, missing = await store.run(work)

        assert (changed, untouched, missing) == (2, 0, None)
        assert total == {"n": 3, "total": 26}
        rows = await store.read(
            lambda tx: tx.fetchall("SELECT name, amount FROM entries ORDER BY id")
        )
        assert [dict(row) for row in rows] == [
            {"name": "a", "amount": 1},
            {"name": "b", "amount": 12},
            {"name": "c", "amount": 13},
        ]

    async def test_question_marks_are_placeholders_except_inside_quotes_and_percent_is_literal(
        self, store: Store
    ) -> None:
        await store.run(lambda tx: insert(tx, "50% off?", 5))
        sql = (
            "SELECT '?' AS mark, 'it''s 100%' AS pct, \"name\" AS label, amount + ? AS more"
            " FROM entries WHERE name LIKE ? -- is this the row?"
        )
        rows = await store.query(sql, (1, "50%"))
        assert rows == [{"mark": "?", "pct": "it's 100%", "label": "50% off?", "more": 6}]

    async def test_upserts_and_greatest_are_written_once_for_every_backend(
        self, store: Store
    ) -> None:
        def upsert(name: str, amount: int) -> Callable[[Tx], int]:
            def work(tx: Tx) -> int:
                larger = tx.dialect.greatest("entries.amount", "excluded.amount")
                return tx.execute(
                    "INSERT INTO entries (name, amount) VALUES (?, ?)"
                    f" ON CONFLICT (name) DO UPDATE SET amount = {larger}",
                    (name, amount),
                )

            return work

        def insert_once(tx: Tx) -> int:
            return tx.execute(
                "INSERT INTO entries (name, amount) VALUES (?, ?) ON CONFLICT DO NOTHING",
                ("a", 100),
            )

        await store.run(upsert("a", 5))
        await store.run(upsert("a", 3))
        assert await store.run(insert_once) == 0
        await store.run(upsert("b", 1))
        await store.run(upsert("b", 7))

        rows = await store.query("SELECT name, amount FROM entries ORDER BY name")
        assert [(row["name"], row["amount"]) for row in rows] == [("a", 5), ("b", 7)]

    async def test_id_and_blob_placeholders_give_an_increasing_key_and_bytes(
        self, factory: StoreFactory
    ) -> None:
        store = factory("blobs", migrations("blobs", "CREATE TABLE blobs (seq {id}, b {blob})"))
        await store.open()
        try:
            for data in (b"\x00first", b"\xffsecond", b""):
                await store.run(functools.partial(insert_blob, data=data))
            rows = await store.query("SELECT seq, b FROM blobs ORDER BY seq")
        finally:
            await store.close()

        assert [bytes(row["b"]) for row in rows] == [b"\x00first", b"\xffsecond", b""]
        assert rows[0]["seq"] < rows[1]["seq"] < rows[2]["seq"]

    async def test_work_sees_the_callers_context_variables(self, store: Store) -> None:
        current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="none")
        current.set("the caller's span")
        assert await store.run(lambda tx: current.get()) == "the caller's span"
        assert await store.read(lambda tx: current.get()) == "the caller's span"

    @pytest.mark.parametrize("ending", ["commits", "raises"])
    async def test_cancelling_the_caller_at_any_await_point_leaves_the_transaction_whole_or_absent(
        self, store: Store, ending: str
    ) -> None:
        """Cancel after 0, 1, 2 ... turns of the loop, until the run ends before the cancel:
        whatever await point the cancel meets, the transaction is all there or not at all."""

        def work(label: str) -> Callable[[Tx], None]:
            def write(tx: Tx) -> None:
                insert(tx, f"{label}-1")
                tx.fetchone("SELECT count(*) AS n FROM entries")
                insert(tx, f"{label}-2")
                if ending == "raises":
                    raise RuntimeError("failed after the cancel")

            return write

        for turns in itertools.count():
            assert turns < 100_000, "the run never ended"
            label = f"t{turns:05d}"
            task = asyncio.create_task(store.run(work(label), key="s1"))
            for _ in range(turns):
                await asyncio.sleep(0)
            if task.done():
                break
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            kept = [name for name in await names(store) if name.startswith(label)]
            whole = [f"{label}-1", f"{label}-2"] if ending == "commits" else []
            assert kept in ([], whole), f"cancelled after {turns} turns: {kept}"
        await store.run(lambda tx: insert(tx, "after"))  # the store still works
        assert "after" in await names(store)

    async def test_transactions_with_one_key_never_interleave_even_from_two_stores(
        self, factory: StoreFactory
    ) -> None:
        stores = [factory("counter", COUNTER) for _ in range(2)]
        for opened in stores:
            await opened.open()

        def increment(tx: Tx) -> None:
            row = tx.fetchone("SELECT n FROM counter WHERE name = ?", ("k",))
            assert row is not None
            tx.execute("UPDATE counter SET n = ? WHERE name = ?", (row["n"] + 1, "k"))

        try:
            await stores[0].run(
                lambda tx: tx.execute("INSERT INTO counter (name, n) VALUES ('k', 0)")
            )
            await asyncio.gather(*(stores[i % 2].run(increment, key="k") for i in range(30)))
            rows = await stores[1].query("SELECT n FROM counter")
        finally:
            for opened in stores:
                await opened.close()

        assert [row["n"] for row in rows] == [30]

    async def test_a_conflict_runs_the_work_again_and_only_the_last_attempt_is_kept(
        self, store: Store
    ) -> None:
        """The retry rule, as every backend applies it: a `Conflict` means rolled back."""
        attempts: list[int] = []

        def work(tx: Tx) -> int:
            attempts.append(1)
            insert(tx, f"attempt-{len(attempts)}")
            if len(attempts) < 3:
                raise Conflict("lost a race (simulated)", code="test")
            return len(attempts)

        assert await store.run(work, key="s1") == 3
        assert await names(store) == ["attempt-3"]

    async def test_a_conflict_every_time_gives_up_after_five_attempts(self, store: Store) -> None:
        attempts: list[int] = []

        def work(tx: Tx) -> None:
            attempts.append(1)
            raise Conflict("lost a race (simulated)", code="test")

        with pytest.raises(Conflict):
            await store.run(work)
        assert len(attempts) == 5

    @pytest.mark.parametrize(
        "error",
        [
            IntegrityError("a constraint", code="test"),
            CommitUnknown("lost while committing", code="test"),
            ValueError("the work's own error"),
        ],
        ids=["integrity", "commit-unknown", "work"],
    )
    async def test_errors_that_do_not_say_rolled_back_are_never_retried(
        self, store: Store, error: Exception
    ) -> None:
        attempts: list[int] = []

        def work(tx: Tx) -> None:
            attempts.append(1)
            raise error

        with pytest.raises(type(error)):
            await store.run(work)
        assert len(attempts) == 1

    async def test_migrations_run_once_when_two_stores_open_one_database_together(
        self, factory: StoreFactory
    ) -> None:
        # Not idempotent on purpose: a second run would fail on the table or add a second row.
        seeded = (
            *LEDGER,
            Migration("ledger", 2, "INSERT INTO entries (name, amount) VALUES ('x', 1)"),
        )
        stores = [factory("shared", seeded) for _ in range(2)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            assert await applied(stores[0]) == [("ledger", 1), ("ledger", 2)]
            assert await names(stores[1]) == ["x"]
        finally:
            for opened in stores:
                await opened.close()

    async def test_components_sharing_a_store_migrate_independently_and_only_what_is_new(
        self, factory: StoreFactory
    ) -> None:
        first = factory("evolving", (*LEDGER, *COUNTER))
        await first.open()
        await first.run(lambda tx: insert(tx, "kept"))
        await first.close()
        added = Migration("counter", 2, "ALTER TABLE counter ADD COLUMN note TEXT")
        second = factory("evolving", (*LEDGER, *COUNTER, added))
        await second.open()
        try:
            assert await applied(second) == [("counter", 1), ("counter", 2), ("ledger", 1)]
            assert await names(second) == ["kept"]
            await second.run(lambda tx: tx.execute("INSERT INTO counter VALUES ('k', 1, 'new')"))
        finally:
            await second.close()

    async def test_a_failing_migration_applies_nothing_and_a_fixed_one_opens(
        self, factory: StoreFactory
    ) -> None:
        broken = migrations("ledger", ENTRIES + "; CREATE TABLE broken (")
        with pytest.raises(ProgrammingError, match=r"(?i)syntax|incomplete"):
            await factory("fragile", broken).open()

        fixed = factory("fragile", LEDGER)
        await fixed.open()
        try:
            assert await applied(fixed) == [("ledger", 1)]
            assert await names(fixed) == []
        finally:
            await fixed.close()

    async def test_a_reader_that_does_not_migrate_refuses_a_schema_behind_and_changes_nothing(
        self, factory: StoreFactory
    ) -> None:
        # Never created: refused, and nothing is made for the owner to find.
        with pytest.raises(SchemaBehind, match="store watched"):
            await factory("watched", LEDGER).open(migrate=False)
        owner = factory("watched", LEDGER)
        await owner.open()
        try:
            await owner.run(lambda tx: insert(tx, "kept"))
            # Behind the reader's code: refused naming the first missing migration.
            newer = (*LEDGER, Migration("ledger", 2, "ALTER TABLE entries ADD COLUMN note TEXT"))
            with pytest.raises(SchemaBehind, match="first ledger v2"):
                await factory("watched", newer).open(migrate=False)
            assert await applied(owner) == [("ledger", 1)]
            # Current: the reader opens and reads what the owner wrote.
            reader = factory("watched", LEDGER)
            await reader.open(migrate=False)
            try:
                assert await names(reader) == ["kept"]
            finally:
                await reader.close()
        finally:
            await owner.close()


class OtherWriter:
    """Another connection to a store's database (another process for SQLite), holding an open
    transaction — and so its locks — until the test lets it go."""

    async def begin(self, *statements: str) -> None:
        raise NotImplementedError

    async def commit(self) -> None:
        raise NotImplementedError


STALL_S = 5.0
"""A stall of the loop no load explains: a wait for the lock on the loop would last SQLite's
busy timeout (10 s), or until the other writer commits (never, if the loop is stuck)."""


class Ticker:
    """Counts turns of a loop timer and the longest stall between two, so a test can see that
    the loop kept running."""

    def __init__(self, every_s: float = 0.002) -> None:
        self.count = 0
        self.longest_stall_s = 0.0
        self._every_s = every_s
        self._last = time.monotonic()
        self._handle = asyncio.get_running_loop().call_later(every_s, self._tick)
        self._changed = asyncio.Event()

    def _tick(self) -> None:
        now = time.monotonic()
        self.longest_stall_s = max(self.longest_stall_s, now - self._last)
        self._last = now
        self.count += 1
        self._changed.set()
        self._handle = asyncio.get_running_loop().call_later(self._every_s, self._tick)

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(WAIT_S):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()

    def stop(self) -> None:
        self._handle.cancel()


class OtherWriterContract(StoreContract):
    """What needs a second writer on the same database: SQLite and Postgres."""

    def other_writer(self, store: Store) -> AbstractAsyncContextManager[OtherWriter]:
        raise NotImplementedError

    async def until_waiting(self, store: Store) -> None:
        """Return once ``store`` has a transaction waiting for the other writer's lock."""
        raise NotImplementedError

    async def test_the_read_path_sees_only_committed_rows_and_never_waits_for_a_writer(
        self, store: Store
    ) -> None:
        await store.run(lambda tx: insert(tx, "committed"))
        async with self.other_writer(store) as other:
            await other.begin("INSERT INTO entries (name, amount) VALUES ('uncommitted', 1)")
            async with asyncio.timeout(WAIT_S):  # a read queued behind the writer would hang
                during = await names(store)
            await other.commit()

        assert during == ["committed"]
        assert await names(store) == ["committed", "uncommitted"]

    async def test_a_write_waiting_for_another_writers_lock_never_blocks_the_loop(
        self, store: Store
    ) -> None:
        await store.run(lambda tx: insert(tx, "held", 0))
        ticker = Ticker()
        try:
            async with self.other_writer(store) as other:
                await other.begin("UPDATE entries SET amount = amount + 100 WHERE name = 'held'")
                await ticker.reach(1)
                waiting = asyncio.create_task(
                    store.run(
                        lambda tx: tx.execute(
                            "UPDATE entries SET amount = amount + 1 WHERE name = 'held'"
                        ),
                        key="held",
                    )
                )
                await self.until_waiting(store)
                seen = ticker.count
                await ticker.reach(seen + 10)  # the loop turns while the write waits
                assert not waiting.done()
                await other.commit()
            assert await asyncio.wait_for(waiting, WAIT_S) == 1
        finally:
            ticker.stop()
        assert ticker.longest_stall_s < STALL_S
        assert await amount_of(store, "held") == 101

    async def test_cancelling_a_caller_whose_write_waits_for_a_lock_still_commits_it_whole(
        self, store: Store
    ) -> None:
        await store.run(lambda tx: insert(tx, "held", 0))

        def two_writes(tx: Tx) -> None:
            insert(tx, "first")
            tx.execute("UPDATE entries SET amount = amount + 1 WHERE name = 'held'")
            insert(tx, "second")

        async with self.other_writer(store) as other:
            await other.begin("UPDATE entries SET amount = amount + 100 WHERE name = 'held'")
            task = asyncio.create_task(store.run(two_writes))
            await self.until_waiting(store)
            task.cancel()
            await other.commit()
            with pytest.raises(asyncio.CancelledError):
                await asyncio.wait_for(task, WAIT_S)

        assert await names(store) == ["first", "held", "second"]
        assert await amount_of(store, "held") == 101


# --- SQLite ---------------------------------------------------------------------------------

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
for line in sys.stdin:
    conn.execute(line)
    print("done", flush=True)
"""
"""Another process on the same SQLite file: runs each line it reads, says when it has."""


class SqliteWriter(OtherWriter):
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self._process = process

    async def _run(self, statement: str) -> None:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(statement.encode() + b"\n")
        await self._process.stdin.drain()
        answer = await asyncio.wait_for(self._process.stdout.readline(), WAIT_S)
        assert answer == b"done\n", f"the other process failed on {statement!r}"

    async def begin(self, *statements: str) -> None:
        for statement in ("BEGIN IMMEDIATE", *statements):
            await self._run(statement)

    async def commit(self) -> None:
        await self._run("COMMIT")


@asynccontextmanager
async def sqlite_writer(path: Path) -> AsyncIterator[OtherWriter]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, str(path),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        yield SqliteWriter(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def until_handed_over(store: SqliteStore, count: int = 1) -> None:
    """Poll until ``store`` has handed ``count`` transactions to its writer thread."""
    async with asyncio.timeout(WAIT_S):
        while store.handovers < count:
            await asyncio.sleep(0.001)


class TestSqliteStore(OtherWriterContract):
    @pytest.fixture
    def factory(self, tmp_path: Path) -> StoreFactory:
        return sqlite_stores(tmp_path / "stores")

    def other_writer(self, store: Store) -> AbstractAsyncContextManager[OtherWriter]:
        assert isinstance(store, SqliteStore)
        return sqlite_writer(store.path)

    async def until_waiting(self, store: Store) -> None:
        assert isinstance(store, SqliteStore)
        await until_handed_over(store)


# --- Postgres -------------------------------------------------------------------------------


class PostgresWriter(OtherWriter):
    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def begin(self, *statements: str) -> None:
        for statement in statements:
            await self._conn.execute(statement.encode())

    async def commit(self) -> None:
        await self._conn.commit()


@asynccontextmanager
async def postgres_writer(store: PostgresStore) -> AsyncIterator[OtherWriter]:
    async with await psycopg.AsyncConnection.connect(
        store.url, options=f"-c search_path={store.schema}"
    ) as conn:
        yield PostgresWriter(conn)


async def until_lock_waits(store: PostgresStore, waiters: int = 1) -> None:
    """Poll ``pg_activity`` until ``waiters`` of the store's sessions wait for a lock."""
    query = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE %s AND wait_event_type = 'Lock'"
    )
    async with (
        await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn,
        asyncio.timeout(WAIT_S),
    ):
        while True:
            found = await (await conn.execute(query, (f"saga-{store.name}",))).fetchone()
            if found is not None and found[0] >= waiters:
                return
            await asyncio.sleep(0.005)


@pytest.mark.slow
class TestPostgresStore(OtherWriterContract):
    @pytest.fixture
    def factory(self, postgres_store_factory: StoreFactory) -> StoreFactory:
        return postgres_store_factory

    def other_writer(self, store: Store) -> AbstractAsyncContextManager[OtherWriter]:
        assert isinstance(store, PostgresStore)
        return postgres_writer(store)

    async def until_waiting(self, store: Store) -> None:
        assert isinstance(store, PostgresStore)
        await until_lock_waits(store)


# --- Memory ---------------------------------------------------------------------------------


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def factory(self) -> StoreFactory:
        return memory_stores()


# --- SQLite's own: the write lock of another process, the busy timeout, the retry rule ------


def short_timeout_store(path: Path) -> SqliteStore:
    return SqliteStore("ledger", path, LEDGER, busy_timeout_ms=50)


@pytest.fixture
async def impatient(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    """A SQLite store whose thread gives up on another writer's lock after 50 ms."""
    store = short_timeout_store(tmp_path / "ledger.db")
    await store.open()
    yield store
    await store.close()


def retries_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "running the transaction again" in r.message]


async def test_a_sqlite_write_that_outwaits_the_busy_timeout_runs_again_under_the_retry_rule(
    impatient: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.store")
    async with sqlite_writer(impatient.path) as other:
        await other.begin()
        waiting = asyncio.create_task(impatient.run(lambda tx: insert(tx, "patient")))
        async with asyncio.timeout(WAIT_S):
            while not retries_logged(caplog):  # the first attempt met the lock and gave up
                await asyncio.sleep(0.005)
        await other.commit()
        assert await asyncio.wait_for(waiting, WAIT_S) == 1
    assert "database is locked [SQLITE_BUSY]" in retries_logged(caplog)[0]
    assert await names(impatient) == ["patient"]


async def test_a_sqlite_write_locked_out_for_every_attempt_fails_with_a_conflict(
    impatient: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shared.store")
    async with sqlite_writer(impatient.path) as other:
        await other.begin()
        with pytest.raises(Conflict) as caught:
            await impatient.run(lambda tx: insert(tx, "never"))
        await other.commit()
    assert caught.value.code == "SQLITE_BUSY"
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert len(retries_logged(caplog)) == 4  # five attempts in all
    assert await names(impatient) == []


async def test_sqlite_writes_queue_behind_a_handed_over_one_in_order_then_return_to_the_loop(
    impatient: SqliteStore,
) -> None:
    async with sqlite_writer(impatient.path) as other:
        await other.begin()
        first = asyncio.create_task(impatient.run(lambda tx: insert(tx, "1-first")))
        await until_handed_over(impatient)
        second = asyncio.create_task(impatient.run(lambda tx: insert(tx, "2-second")))
        await other.commit()
        await asyncio.wait_for(asyncio.gather(first, second), WAIT_S)
    rows = await impatient.query("SELECT name FROM entries ORDER BY id")
    assert [row["name"] for row in rows] == ["1-first", "2-second"]
    await impatient.run(lambda tx: insert(tx, "3-third"))
    assert impatient.handovers == 2  # the two that met the lock or queued behind it, no more
