"""A run's history: per saga, each read and write of a key with its value and time, each step,
fence and compensation, its start and its end — as JSON lines, recorded at the seams only.

Nothing here is inside a service. The services put what a step read and wrote into its result's
audit (`shared/services/audit.py`); the `Recorder`, a step middleware of the harness's own placed
inside the fault injector, sees every step's result (or refusal) and every fence and writes them
down; the lab's driver adds what only it knows: when it started a saga (the prices the order was
admitted with), when it saw the saga settle, and the catalogue changes it made.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.contracts import OrderRequest, SagaOutcome
from shared.services.audit import AUDIT, price

Kind = Literal["start", "step", "fence", "read", "write", "end"]
Value = int | str

CATALOGUE = "catalogue"
"""The actor of a catalogue change (no saga)."""


class Entry(BaseModel):
    """One line of a history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int
    at: float
    kind: Kind
    saga: str
    """The saga it belongs to (``catalogue`` for a price change made by the shop)."""
    variant: str = ""
    step: str | None = None
    phase: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    """A step: done, failed, rejected, noop, skipped or transient; a fence: fenced, acted or
    failed; an end: the saga's status."""
    reason: str | None = None
    key: str | None = None
    value: Value | None = None
    read: Value | None = None
    """A write: the value it was computed from, read in the same transaction (None: blind)."""
    points: int | None = None
    """A start: the points the order uses."""
    total: int | None = None
    """A start: the order's total at its admitted prices."""


class History:
    """The entries of one lab runtime, in the order they were recorded."""

    def __init__(self, variant: str = "") -> None:
        self.variant = variant
        self.entries: list[Entry] = []
        self._seq = itertools.count(1)

    def add(self, kind: Kind, saga: str, at: float | None = None, **fields: Any) -> Entry:
        entry = Entry(
            seq=next(self._seq),
            at=time.time() if at is None else at,
            kind=kind,
            saga=saga,
            variant=self.variant,
            **fields,
        )
        self.entries.append(entry)
        return entry

    def started(self, saga_id: str, order: OrderRequest, at: float | None = None) -> None:
        """A saga admitted (``at``: when its start was asked for, before admission read the
        catalogue): its order's prices are what admission read."""
        at = time.time() if at is None else at
        self.add("start", saga_id, at, points=order.points_to_use, total=order.total_cents)
        for item in order.items:
            self.add(
                "read",
                saga_id,
                at,
                step="admission",
                key=price(item.product_id),
                value=item.unit_price_cents,
            )

    def ended(self, outcome: SagaOutcome) -> None:
        reason = str(outcome.reason) if outcome.reason else None
        self.add("end", outcome.saga_id, outcome=outcome.status.value, reason=reason)

    def repriced(self, product_id: str, price_cents: int) -> None:
        """The shop changed a price (a write by no saga)."""
        self.add("write", CATALOGUE, key=price(product_id), value=price_cents)

    def accesses(self, saga_id: str, call: dict[str, Any], detail: dict[str, Any]) -> None:
        """The reads and writes of a step's audit, each at its own time."""
        for noted in detail.get(AUDIT, []):
            fields = {"key": noted["key"], "value": noted["value"], **call}
            if noted["op"] == "write" and "read" in noted:
                fields["read"] = noted["read"]
            self.add("read" if noted["op"] == "read" else "write", saga_id, noted["at"], **fields)

    def of(self, sagas: Iterable[str], keys_with: str = "") -> list[Entry]:
        """The entries of these sagas, and catalogue changes of keys containing ``keys_with``."""
        wanted = set(sagas)
        return [e for e in self.entries if e.saga in wanted or _shop(e, keys_with)]


def _shop(entry: Entry, keys_with: str) -> bool:
    return entry.saga == CATALOGUE and bool(keys_with) and keys_with in (entry.key or "")


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    """By time, then by the order they were recorded in."""
    return sorted(entries, key=lambda e: (e.at, e.seq))


def write_jsonl(path: Path, entries: Iterable[Entry]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for entry in entries:
            out.write(entry.model_dump_json(exclude_none=True) + "\n")


def read_jsonl(path: Path) -> list[Entry]:
    return list(_lines(path))


def _lines(path: Path) -> Iterator[Entry]:
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                yield Entry.model_validate(json.loads(line))
