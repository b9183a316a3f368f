"""The five anomalies the lab forces, each with the invariant that catches it and its cure."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class Anomaly(StrEnum):
    LOST_UPDATE = "lost_update"
    """1. A compensation restores a snapshot of the stock and wipes another saga's reservation."""
    DIRTY_READ = "dirty_read"
    """2. A saga is refused on points another saga deducted and then gave back."""
    FUZZY_READ = "fuzzy_read"
    """3. The price read again at the charge differs from the one admitted: charge and order
    disagree."""
    CANCEL_OVERWRITTEN = "cancel_overwritten"
    """4. A completion arriving after the saga recorded the customer's cancel overwrites it."""
    EARLY_COMPENSATION = "early_compensation"
    """5. A step's compensation (or the cancel's fence) runs before the step, which commits
    late and is never undone: a leak."""


@dataclass(frozen=True)
class About:
    """What the report and the docs say about an anomaly."""

    number: int
    title: str
    invariant: str
    countermeasures: tuple[str, ...]


ABOUT: dict[Anomaly, About] = {
    Anomaly.LOST_UPDATE: About(
        1,
        "lost update by a compensation that restores a snapshot",
        "stock_balanced",
        ("commutative_updates",),
    ),
    Anomaly.DIRTY_READ: About(
        2, "dirty read of points", "refusals_serializable", ("points_lock", "pessimistic view")
    ),
    Anomaly.FUZZY_READ: About(
        3, "fuzzy read of the price", "charge_matches_order", ("by_value", "reread_value")
    ),
    Anomaly.CANCEL_OVERWRITTEN: About(
        4,
        "lost update between a customer's cancel and completion",
        "end_as_reported",
        ("order_lock",),
    ),
    Anomaly.EARLY_COMPENSATION: About(
        5,
        "a step's compensation applied before the step itself",
        "compensated_leaves_nothing",
        ("version_file",),
    ),
}

INVARIANT_OF: dict[str, Anomaly] = {about.invariant: anomaly for anomaly, about in ABOUT.items()}


class Finding(BaseModel):
    """One anomaly found (by the checker in a history, or by its invariant in the state)."""

    model_config = ConfigDict(frozen=True)

    anomaly: Anomaly
    sagas: tuple[str, ...]
    """The sagas involved, sorted."""
    note: str = ""

    @classmethod
    def of(cls, anomaly: Anomaly, sagas: set[str], note: str) -> Finding:
        return cls(anomaly=anomaly, sagas=tuple(sorted(sagas)), note=note)
