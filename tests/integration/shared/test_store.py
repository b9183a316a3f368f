"""The store protocol on every backend: whole transactions, savepoints, reads, migrations, cancels.

Written against `Store` only (the ``store_factory`` fixture names the backends), so a new
adapter passes this suite before any service runs on it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence

import pytest

from shared.store import Migration, Store, StoreFactory, Tx, migrations

ENTRIES = "CREATE TABLE entries (id {id}, name TEXT NOT NULL UNIQUE, amount INTEGER NOT NULL)"
LEDGER = migrations("ledger", ENTRIES)
WAIT_S = 10.0
"""How long a blocked ``work`` waits for the test to release it (only reached on a failure)."""


@pytest.fixture
async def store(store_factory: StoreFactory) -> AsyncIterator[Store]:
    opened = store_factory("ledger", LEDGER)
    await opened.open()
    yield opened
    await opened.close()


def insert(tx: Tx, name: str, amount: int = 1) -> int:
    return tx.execute("INSERT INTO entries (name, amount) VALUES (?, ?)", (name, amount))


async def names(store: Store) -> list[str]:
    rows = await store.query("SELECT name FROM entries ORDER BY name")
    return [row["name"] for row in rows]


class Gate:
    """Holds a ``work`` function inside its transaction until the test lets it go."""

    def __init__(self) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        """Called by ``work``: say it is inside, then wait to be released."""
        self.inside.set()
        assert self.release.wait(WAIT_S), "the test never released the transaction"

    async def entered(self) -> None:
        assert await asyncio.to_thread(self.inside.wait, WAIT_S), "work never started"


async def test_work_that_returns_commits_every_statement_and_hands_back_its_result(
    store: Store,
) -> None:
    def work(tx: Tx) -> int:
        return insert(tx, "a") + insert(tx, "b")

    assert await store.run(work, key="s1") == 2
    assert await names(store) == ["a", "b"]


async def test_work_that_raises_rolls_back_every_statement_and_the_error_reaches_the_caller(
    store: Store,
) -> None:
    def work(tx: Tx) -> None:
        insert(tx, "a")
        insert(tx, "b")
        raise LookupError("the state change failed")

    with pytest.raises(LookupError, match="the state change failed"):
        await store.run(work)
    assert await names(store) == []


async def test_a_savepoint_undoes_its_block_and_keeps_the_rest_of_the_transaction(
    store: Store,
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


async def test_rows_are_read_by_column_name_and_writes_count_the_rows_they_changed(
    store: Store,
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
    rows = await store.read(lambda tx: tx.fetchall("SELECT name, amount FROM entries ORDER BY id"))
    assert [dict(row) for row in rows] == [
        {"name": "a", "amount": 1},
        {"name": "b", "amount": 12},
        {"name": "c", "amount": 13},
    ]


async def test_upserts_and_greatest_are_written_once_for_every_backend(store: Store) -> None:
    def upsert(name: str, amount: int) -> int:
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
            "INSERT INTO entries (name, amount) VALUES (?, ?) ON CONFLICT DO NOTHING", ("a", 100)
        )

    await store.run(upsert("a", 5))
    await store.run(upsert("a", 3))
    assert await store.run(insert_once) == 0
    await store.run(upsert("b", 1))
    await store.run(upsert("b", 7))

    rows = await store.query("SELECT name, amount FROM entries ORDER BY name")
    assert [(row["name"], row["amount"]) for row in rows] == [("a", 5), ("b", 7)]


async def test_id_and_blob_placeholders_give_an_increasing_key_and_bytes(
    store_factory: StoreFactory,
) -> None:
    store = store_factory("blobs", migrations("blobs", "CREATE TABLE blobs (seq {id}, b {blob})"))
    await store.open()
    try:
        for data in (b"\x00first", b"\xffsecond"):
            await store.run(lambda tx, d=data: tx.execute("INSERT INTO blobs (b) VALUES (?)", (d,)))
        rows = await store.query("SELECT seq, b FROM blobs ORDER BY seq")
    finally:
        await store.close()

    assert [bytes(row["b"]) for row in rows] == [b"\x00first", b"\xffsecond"]
    assert rows[0]["seq"] < rows[1]["seq"]


async def test_the_read_path_sees_only_committed_rows_and_never_waits_for_a_writer(
    store: Store,
) -> None:
    await store.run(lambda tx: insert(tx, "committed"))
    gate = Gate()

    def long_writer(tx: Tx) -> None:
        insert(tx, "uncommitted")
        gate.hold()

    writer = asyncio.create_task(store.run(long_writer))
    try:
        await gate.entered()
        async with asyncio.timeout(WAIT_S):  # a read queued behind the writer would hang here
            during = await names(store)
    finally:
        gate.release.set()
        await writer

    assert during == ["committed"]
    assert await names(store) == ["committed", "uncommitted"]


@pytest.mark.parametrize("ending", ["commits", "raises"])
async def test_cancelling_the_caller_mid_run_leaves_the_transaction_whole_or_absent(
    store: Store, ending: str
) -> None:
    gate = Gate()

    def work(tx: Tx) -> None:
        insert(tx, "first")
        gate.hold()
        insert(tx, "second")
        if ending == "raises":
            raise RuntimeError("failed after the cancel")

    task = asyncio.create_task(store.run(work, key="s1"))
    await gate.entered()
    task.cancel()
    gate.release.set()

    with pytest.raises(asyncio.CancelledError):
        await task
    # The cancel waited for the transaction's end: nothing is half done, the store still works.
    assert await names(store) == (["first", "second"] if ending == "commits" else [])
    await store.run(lambda tx: insert(tx, "after"))
    assert "after" in await names(store)


async def test_a_cancelled_run_still_queued_behind_another_writer_commits_whole_or_not_at_all(
    store: Store,
) -> None:
    gate = Gate()
    first = asyncio.create_task(store.run(lambda tx: (insert(tx, "first"), gate.hold())))
    await gate.entered()
    queued = asyncio.create_task(
        store.run(lambda tx: (insert(tx, "queued-1"), insert(tx, "queued-2")))
    )
    await asyncio.sleep(0)  # let the queued run be submitted before it is cancelled
    queued.cancel()
    gate.release.set()

    await first
    with pytest.raises(asyncio.CancelledError):
        await queued
    after = set(await names(store))
    assert "first" in after
    assert {"queued-1", "queued-2"} <= after or not ({"queued-1", "queued-2"} & after)


async def test_transactions_with_one_key_never_interleave_even_from_two_stores(
    store_factory: StoreFactory,
) -> None:
    stores = [store_factory("counter", COUNTER) for _ in range(2)]
    for opened in stores:
        await opened.open()

    def increment(tx: Tx) -> None:
        row = tx.fetchone("SELECT n FROM counter WHERE name = ?", ("k",))
        assert row is not None
        tx.execute("UPDATE counter SET n = ? WHERE name = ?", (row["n"] + 1, "k"))

    try:
        await stores[0].run(lambda tx: tx.execute("INSERT INTO counter (name, n) VALUES ('k', 0)"))
        await asyncio.gather(*(stores[i % 2].run(increment, key="k") for i in range(30)))
        rows = await stores[1].query("SELECT n FROM counter")
    finally:
        for opened in stores:
            await opened.close()

    assert [row["n"] for row in rows] == [30]


COUNTER = migrations("counter", "CREATE TABLE counter (name TEXT PRIMARY KEY, n INTEGER NOT NULL)")


async def applied(store: Store) -> list[tuple[str, int]]:
    rows = await store.query(
        "SELECT component, version FROM schema_migrations ORDER BY component, version"
    )
    return [(row["component"], row["version"]) for row in rows]


async def open_all(stores: Sequence[Store]) -> None:
    await asyncio.gather(*(store.open() for store in stores))


async def test_migrations_run_once_when_two_stores_open_one_database_together(
    store_factory: StoreFactory,
) -> None:
    # Not idempotent on purpose: a second run would fail on the table or add a second row.
    seeded = (*LEDGER, Migration("ledger", 2, "INSERT INTO entries (name, amount) VALUES ('x', 1)"))
    stores = [store_factory("shared", seeded) for _ in range(2)]
    await open_all(stores)
    try:
        assert await applied(stores[0]) == [("ledger", 1), ("ledger", 2)]
        assert await names(stores[1]) == ["x"]
    finally:
        for opened in stores:
            await opened.close()


async def test_components_sharing_a_store_migrate_independently_and_only_what_is_new(
    store_factory: StoreFactory,
) -> None:
    first = store_factory("evolving", (*LEDGER, *COUNTER))
    await first.open()
    await first.run(lambda tx: insert(tx, "kept"))
    await first.close()
    added = Migration("counter", 2, "ALTER TABLE counter ADD COLUMN note TEXT")
    second = store_factory("evolving", (*LEDGER, *COUNTER, added))
    await second.open()
    try:
        assert await applied(second) == [("counter", 1), ("counter", 2), ("ledger", 1)]
        assert await names(second) == ["kept"]
        await second.run(lambda tx: tx.execute("INSERT INTO counter VALUES ('k', 1, 'new')"))
    finally:
        await second.close()


async def test_a_failing_migration_applies_nothing_and_a_fixed_one_opens(
    store_factory: StoreFactory,
) -> None:
    broken = migrations("ledger", ENTRIES + "; CREATE TABLE broken (")
    with pytest.raises(Exception, match=r"(?i)syntax|incomplete"):
        await store_factory("fragile", broken).open()

    fixed = store_factory("fragile", LEDGER)
    await fixed.open()
    try:
        assert await applied(fixed) == [("ledger", 1)]
        assert await names(fixed) == []
    finally:
        await fixed.close()
