"""open_stores: settings pick the backend; an embedded Postgres when no URL is given."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.postgres_server import EmbeddedPostgres
from shared.servers import ServerError
from shared.settings import Settings, StoreKind
from shared.store.base import Store, migrations
from shared.store.factory import open_stores
from shared.store.postgres import PostgresStore
from shared.store.sqlite import SqliteStore

NOTES = migrations("notes", "CREATE TABLE notes (body TEXT NOT NULL)")


async def write_and_read(store: Store) -> list[str]:
    await store.open()
    try:
        await store.run(lambda tx: tx.execute("INSERT INTO notes VALUES (?)", ("hello",)))
        return [row["body"] for row in await store.query("SELECT body FROM notes")]
    finally:
        await store.close()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder under /tmp that the Postgres system account may enter (see the launcher)."""
    path = Path(tempfile.mkdtemp(prefix="saga-stores-"))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_sqlite_is_the_default_with_one_file_per_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SAGA_STORE", raising=False)
    async with open_stores(Settings(data_dir=tmp_path)) as factory:
        store = factory("inventory", NOTES)
        assert isinstance(store, SqliteStore)
        assert await write_and_read(store) == ["hello"]
    assert (tmp_path / "inventory.db").is_file()


async def test_a_postgres_url_puts_each_store_in_a_schema_on_that_server(
    postgres_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    settings = Settings(store=StoreKind.POSTGRES, postgres_url=postgres_server.url)
    name = f"factory_{uuid.uuid4().hex[:8]}"
    async with open_stores(settings, tmp_path) as factory:
        store = factory(name, NOTES)
        assert isinstance(store, PostgresStore)
        assert (store.url, store.schema) == (postgres_server.url, name)
        assert await write_and_read(store) == ["hello"]
    assert list(tmp_path.iterdir()) == []


async def test_postgres_without_a_url_runs_an_embedded_server_for_the_block(
    shared_tmp: Path,
) -> None:
    settings = Settings(store=StoreKind.POSTGRES, postgres_url=None)
    async with open_stores(settings, shared_tmp) as factory:
        assert await write_and_read(factory("inventory", NOTES)) == ["hello"]
    assert (shared_tmp / "postgres" / "pgdata" / "PG_VERSION").is_file()
    with pytest.raises(ServerError, match="cannot connect to Postgres"):
        await factory("inventory", NOTES).open()


async def test_a_schema_prefix_keeps_one_variants_stores_apart_from_anothers(
    postgres_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    base = Settings(store=StoreKind.POSTGRES, postgres_url=postgres_server.url)
    name = f"factory_{uuid.uuid4().hex[:8]}"
    async with (
        open_stores(base.for_variant("choreography")) as choreography,
        open_stores(base.for_variant("orchestration")) as orchestration,
    ):
        assert await write_and_read(choreography(name, NOTES)) == ["hello"]
        assert await write_and_read(orchestration(name, NOTES)) == ["hello"]
        assert isinstance(store := choreography(name, NOTES), PostgresStore)
        assert store.schema == f"choreography_{name}"
