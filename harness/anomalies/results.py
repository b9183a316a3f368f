"""What a lab run found: one cell per anomaly, style and setting, and the matrix of them all."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.anomalies.history import Entry
from harness.anomalies.kinds import Anomaly, Finding
from shared.contracts import SagaOutcome


class SagaEnd(BaseModel):
    """How one saga of a cell settled, and its trace."""

    model_config = ConfigDict(frozen=True)

    letter: str
    saga_id: str
    outcome: SagaOutcome
    trace_id: str

    @classmethod
    def of(cls, letter: str, saga_id: str, outcome: SagaOutcome, trace_id: str) -> SagaEnd:
        return cls(letter=letter, saga_id=saga_id, outcome=outcome, trace_id=trace_id)

    @property
    def label(self) -> str:
        reason = f" ({self.outcome.reason})" if self.outcome.reason else ""
        return f"{self.letter}: {self.outcome.status.value}{reason}"


class CellRun(BaseModel):
    """One anomaly's interleaving on one style with one setting, as found by both checks."""

    model_config = ConfigDict(frozen=True)

    anomaly: Anomaly
    variant: str
    setting: str
    countermeasures: str
    """The switches over the defaults (`Countermeasures.text`; empty: the defaults)."""
    definition: str
    off: bool
    """Whether this is the cell with the anomaly's countermeasure off."""
    expected: bool
    """Whether the anomaly is expected here (off, in a style where it can happen)."""
    sagas: list[SagaEnd]
    by_history: list[Finding]
    by_invariants: list[Finding]
    seconds: float
    history: list[Entry] = Field(default_factory=list, exclude=True)

    def found(self, findings: list[Finding]) -> list[Finding]:
        return [f for f in findings if f.anomaly is self.anomaly]

    @property
    def observed(self) -> bool:
        """The cell's anomaly, found in the history."""
        return bool(self.found(self.by_history))

    @property
    def agree(self) -> bool:
        """History and invariants found the same anomalies in the same sagas."""
        return _kinds(self.by_history) == _kinds(self.by_invariants)

    @property
    def as_expected(self) -> bool:
        return self.agree and self.observed == self.expected

    @property
    def involved(self) -> tuple[str, ...]:
        """The sagas the cell's anomaly involves (by letter), as the history names them."""
        letters = {end.saga_id: end.letter for end in self.sagas}
        named = {s for f in self.found(self.by_history) for s in f.sagas}
        return tuple(sorted(letters.get(s, s) for s in named))


def _kinds(findings: list[Finding]) -> set[tuple[Anomaly, tuple[str, ...]]]:
    return {(f.anomaly, f.sagas) for f in findings}
