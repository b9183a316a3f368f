"""What each run did to a deployment, so its conservation can be checked later.

A run on a deployment writes one entry into ``<state dir>/ledger/<tag>.json``: its namespace
tag, when it started, the variants it ran on, the catalogue and balances it seeded (the
initial values) and the orders it means to place, in the scenario's own ids; each saga it did
place is appended to ``<tag>.placed`` as its start returns (harness/deploy/placements.py).
`saga-compare check` reads them back: with the services' current state and each placed
saga's outcome, every invariant of every run can be checked again, at any time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.compare.namespace import Namespace
from harness.deploy import placements
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
    tracks_placements: bool = False
    """The run appends each saga it placed to ``<tag>.placed``; without it (older entries,
    runs that do not), every order counts as placed."""
    definition: str | None = None
    """The saga definition the deployment ran when the run started: its sagas are checked by
    it, even after an upgrade (``saga-compare upgrade``). None (older entries): the
    deployment's present one."""

    @property
    def namespace(self) -> Namespace:
        return Namespace(self.tag)

    def placed_orders(
        self, state_dir: Path, variant: str, known: Collection[str] = ()
    ) -> list[OrderRequest]:
        """The orders this run placed on ``variant``: recorded as placed, or ``known`` to the
        deployment by saga id (a start that was under way when the run stopped)."""
        if variant not in self.variants:
            return []
        if not self.tracks_placements:
            return list(self.orders)
        done = placements.placed(folder_of(state_dir), self.tag)
        chosen = []
        for order in self.orders:
            saga_id = self.namespace.saga_id(order.order_id)
            if (variant, saga_id) in done or saga_id in known:
                chosen.append(order)
        return chosen


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
