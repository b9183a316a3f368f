"""What each run did to a deployment, so its conservation can be checked later.

A run on a deployment writes one entry into ``<state dir>/ledger/<tag>.json``: its namespace
tag, when it started, the variants it ran on, the catalogue and balances it seeded (the
initial values) and the orders it placed, in the scenario's own ids. `saga-compare check`
reads them back: with the services' current state and each saga's outcome, every invariant
of every run can be checked again, at any time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.compare.namespace import Namespace
from shared.contracts import OrderRequest
from shared.seed import SeedData

FOLDER = "ledger"


class Entry(BaseModel):
    """One run's namespace: its seed (initial values) and its orders."""

    model_config = ConfigDict(frozen=True)

    tag: str
    started_at: float = Field(default_factory=time.time)
    what: str
    """What ran: a scenario's name, ``chaos`` ..."""
    variants: list[str]
    seed: SeedData
    orders: list[OrderRequest]

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.tag)


def folder_of(state_dir: Path) -> Path:
    return state_dir / FOLDER


def record(state_dir: Path, entry: Entry) -> None:
    """Write the entry (atomically: a reader never sees half of it)."""
    folder = folder_of(state_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{entry.tag}.json"
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(entry.model_dump_json(), encoding="utf-8")
    temporary.replace(target)


def entries(state_dir: Path, since: float | None = None) -> list[Entry]:
    """Every readable entry, oldest first; ``since`` keeps those started at or after it."""
    found = []
    for path in sorted(folder_of(state_dir).glob("*.json")):
        try:
            entry = Entry.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            continue
        if since is None or entry.started_at >= since:
            found.append(entry)
    return sorted(found, key=lambda e: e.started_at)
