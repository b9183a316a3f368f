"""What a deployment keeps, recorded, so a deleted store is refused instead of recreated empty.

Once a deployment is ready its supervisor writes ``<state dir>/stores.json``: per store kind,
the files that hold its state (each variant's SQLite stores, the Temporal database, the NATS
JetStream folder) and, on Postgres, each variant's schemas. The next start in that state dir
checks them first: a store that was recorded and is gone (``payment.db`` removed by hand, a
schema dropped) would otherwise come back empty without a word, and only `check` would
notice that money is no longer conserved. ``up --fresh`` discards the whole state instead
and starts an empty deployment.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import psycopg
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.servers import ServerError
from shared.settings import Settings, StoreKind

FILE_NAME = "stores.json"
SERVER_STATE = ("temporal/temporal.db", "nats/jetstream")
"""The servers' own state, relative to the state dir."""
STATE_FOLDERS = ("choreography", "orchestration", "postgres", "nats", "temporal", "ledger")
"""Everything ``--fresh`` discards (the logs and the ports in topology.json stay)."""


class MissingStores(ServerError):
    """Recorded stores are gone; the message names them and the way out."""


class Kept(BaseModel):
    """One store kind's state: files relative to the state dir, and Postgres schemas."""

    model_config = ConfigDict(frozen=True)

    files: list[str]
    schemas: list[str] = []


class Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    kinds: dict[StoreKind, Kept]


def path_of(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def read(state_dir: Path) -> Record | None:
    """The record, or None when there is none (a first start) or it is not ours."""
    try:
        return Record.model_validate_json(path_of(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValidationError):
        return None


def present(state_dir: Path, variants: dict[str, Settings]) -> list[str]:
    """The files that hold the deployment's state now (after a start, all of them)."""
    found = [
        str(path.relative_to(state_dir))
        for settings in variants.values()
        for path in sorted(settings.data_dir.glob("*.db"))
    ]
    return found + [name for name in SERVER_STATE if (state_dir / name).exists()]


async def schemas(url: str, variants: dict[str, Settings]) -> list[str]:
    """The variants' schemas on the Postgres server at ``url``."""
    prefixes = tuple(s.postgres_schema_prefix for s in variants.values())
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        cursor = await connection.execute("SELECT schema_name FROM information_schema.schemata")
        names = [str(row[0]) for row in await cursor.fetchall()]
    return sorted(name for name in names if name.startswith(prefixes))


def write(state_dir: Path, store: StoreKind, kept: Kept) -> None:
    """Record ``kept`` for ``store`` (atomically; other kinds' records stay)."""
    record = read(state_dir) or Record(kinds={})
    updated = Record(kinds={**record.kinds, store: kept})
    temporary = path_of(state_dir).with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(updated.model_dump_json(indent=2), encoding="utf-8")
    temporary.replace(path_of(state_dir))


def recorded(state_dir: Path, store: StoreKind) -> Kept | None:
    record = read(state_dir)
    return None if record is None else record.kinds.get(store)


def check_files(state_dir: Path, store: StoreKind) -> None:
    """MissingStores when a recorded file of ``store`` is gone."""
    kept = recorded(state_dir, store)
    if kept is not None:
        refuse(state_dir, [name for name in kept.files if not (state_dir / name).exists()])


async def check_schemas(state_dir: Path, url: str, variants: dict[str, Settings]) -> None:
    """MissingStores when a recorded schema is gone from the server (Postgres only)."""
    kept = recorded(state_dir, StoreKind.POSTGRES)
    if kept is not None and kept.schemas:
        there = set(await schemas(url, variants))
        refuse(state_dir, [f"schema {name}" for name in kept.schemas if name not in there])


def refuse(state_dir: Path, missing: list[str]) -> None:
    if missing:
        raise MissingStores(
            f"the deployment in {state_dir} recorded stores that are gone: "
            f"{', '.join(missing)}; restore them, or discard the whole state and start "
            f"empty with `saga-compare up --state-dir {state_dir} --fresh`"
        )


def discard(state_dir: Path) -> None:
    """``--fresh``: remove every store, the servers' state and the ledger."""
    for name in STATE_FOLDERS:
        shutil.rmtree(state_dir / name, ignore_errors=True)
    path_of(state_dir).unlink(missing_ok=True)
