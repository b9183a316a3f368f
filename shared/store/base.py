"""The store protocol every service store implements: one transaction, one call.

A write is ``await store.run(work)``: ``work(tx)`` is a plain (synchronous) function that runs
the whole transaction — the service's rows, the step log, the choreography's inbox and outbox
rows — and the adapter commits it, or rolls it back if ``work`` raises. ``work`` never awaits
and touches nothing but ``tx`` (it may run again under the retry rule, `shared.store.retry`).
A transaction that has started always finishes: cancelling the awaiting task waits for the
commit or rollback before the cancel is raised, so nothing is left half done. Database errors
are the store's own (`shared.store.errors`), whatever the driver.

Reads go through ``store.read(work)`` (or ``store.query(sql)``), on a connection of their own
that never queues behind a writer.

SQL is written once for every backend: ``?`` placeholders (an adapter may rewrite them), rows
read by column name, standard ``INSERT ... ON CONFLICT`` upserts, and the few constructs the
dialects spell differently asked of ``tx.dialect`` (`Dialect`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from shared.store.errors import SchemaBehind, StoreError

T = TypeVar("T")
Params = Sequence[Any]
Row = Mapping[str, Any]
"""A result row, read by column name (give every computed column an alias)."""


class Dialect(Protocol):
    """What the backends spell differently; everything else is one portable SQL text."""

    name: str

    def greatest(self, *expressions: str) -> str:
        """Largest of several values in a row (SQLite ``max(a, b)``, Postgres ``greatest``)."""
        ...

    def ddl(self, script: str) -> str:
        """A migration script with its type placeholders filled (see `DDL_PLACEHOLDERS`)."""
        ...

    def skip_locked(self) -> str:
        """The suffix of a ``SELECT`` that claims rows no other transaction holds.

        Postgres: ``FOR UPDATE SKIP LOCKED``; SQLite: nothing (its writers never overlap).
        """
        ...

    def for_update(self) -> str:
        """The suffix of a ``SELECT`` whose rows the transaction goes on to rewrite: another
        transaction rewriting them waits, then reads what this one wrote.

        Postgres: ``FOR UPDATE`` (READ COMMITTED would let both read the old row and the
        second write lose the first's change); SQLite: nothing (its writers never overlap).
        """
        ...


DDL_PLACEHOLDERS = {
    "{id}": "an auto-increment integer primary key column type",
    "{blob}": "a binary column type",
}
"""Placeholders a migration may use where the backends' DDL differs.

Everything else is portable as written: ``TEXT``, ``INTEGER`` (64-bit on SQLite; use
``BIGINT`` where Postgres needs 64 bits), ``DOUBLE PRECISION`` for epoch seconds (never
``REAL``: Postgres' ``REAL`` is 4 bytes), ``CHECK`` constraints, partial indexes.
"""


class Tx(Protocol):
    """An open transaction, used synchronously inside ``work(tx)``."""

    @property
    def dialect(self) -> Dialect: ...

    def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    def executemany(self, sql: str, params: Iterable[Params]) -> None:
        """Run one statement once per parameter set."""
        ...

    def fetchone(self, sql: str, params: Params = ()) -> Row | None: ...

    def fetchall(self, sql: str, params: Params = ()) -> list[Row]: ...

    def savepoint(self) -> AbstractContextManager[None]:
        """Undo the block's writes if it raises, keeping the rest of the transaction."""
        ...


Work = Callable[[Tx], T]


class Store(Protocol):
    """One service's own database (a SQLite file, or a Postgres schema)."""

    name: str

    @property
    def dialect(self) -> Dialect: ...

    async def open(self, *, migrate: bool = True) -> None:
        """Connect and apply pending migrations (safe when several processes open at once);
        with ``migrate=False`` (a reader of a store others own), change nothing and raise
        `SchemaBehind` unless the schema is already current."""
        ...

    async def close(self) -> None: ...

    async def run(self, work: Callable[[Tx], T], *, key: str | None = None) -> T:
        """Run ``work`` as one transaction and return its result.

        ``key`` serializes transactions of one saga across connections and processes (a
        forward step and its compensation must not both see "no row"): Postgres takes an
        advisory transaction lock on it; SQLite has one writer at a time anyway.
        """
        ...

    async def read(self, work: Callable[[Tx], T]) -> T:
        """Run read-only ``work`` on a consistent snapshot, never waiting for a writer."""
        ...

    async def query(self, sql: str, params: Params = ()) -> list[Row]:
        """One read-only statement (a shortcut for ``read``)."""
        ...


class StoreFactory(Protocol):
    """Builds a service's store (nothing opened yet): ``factory("inventory", migrations)``."""

    def __call__(self, name: str, migrations: Sequence[Migration]) -> Store: ...


@dataclass(frozen=True)
class Migration:
    """One schema change of one component (a service's tables, the outbox, the tracker ...).

    Each store records ``(component, version)`` of every migration applied, so components
    that share a store evolve independently and each runs once.
    """

    component: str
    version: int
    script: str
    """Statements separated by ``;`` (no ``;`` inside a statement), with `DDL_PLACEHOLDERS`."""

    def statements(self, dialect: Dialect) -> list[str]:
        return [s.strip() for s in dialect.ddl(self.script).split(";") if s.strip()]


MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " component TEXT NOT NULL,"
    " version INTEGER NOT NULL,"
    " applied_at DOUBLE PRECISION NOT NULL,"
    " PRIMARY KEY (component, version))"
)


def migrations(component: str, *scripts: str) -> tuple[Migration, ...]:
    """A component's migrations, numbered from 1 in the order given (never reorder them)."""
    return tuple(Migration(component, n, s) for n, s in enumerate(scripts, start=1))


def pending(applied: set[tuple[str, int]], wanted: Iterable[Migration]) -> list[Migration]:
    """The migrations not applied yet, in the order given."""
    return [m for m in wanted if (m.component, m.version) not in applied]


def check_migrations(tx: Tx, wanted: Sequence[Migration], store: str) -> None:
    """Raise `SchemaBehind` naming the first migration ``wanted`` that is not applied."""
    try:
        with tx.savepoint():  # Postgres: the failed read leaves the transaction usable
            rows = tx.fetchall("SELECT component, version FROM schema_migrations")
    except StoreError:
        rows = []  # not even the migrations table: nothing was ever applied
    todo = pending({(r["component"], int(r["version"])) for r in rows}, wanted)
    if todo:
        first = todo[0]
        raise SchemaBehind(
            f"store {store}: {len(todo)} migration(s) not applied (first {first.component} "
            f"v{first.version}); start the processes that own it, which migrate it"
        )


def apply_migrations(tx: Tx, wanted: Sequence[Migration], now: float) -> list[Migration]:
    """Apply what is pending inside ``tx`` (the caller holds the store's migration lock)."""
    tx.execute(MIGRATIONS_TABLE)
    rows = tx.fetchall("SELECT component, version FROM schema_migrations")
    todo = pending({(r["component"], int(r["version"])) for r in rows}, wanted)
    for migration in todo:
        for statement in migration.statements(tx.dialect):
            tx.execute(statement)
        tx.execute(
            "INSERT INTO schema_migrations (component, version, applied_at) VALUES (?, ?, ?)",
            (migration.component, migration.version, now),
        )
    return todo
