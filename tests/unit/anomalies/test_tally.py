"""How a stress cell judges a batch: the two checks must find the same number of each kind of
anomaly; the sagas they name may differ (the state alone cannot tell whose reservation a lost
update wiped), the counts may not."""

from __future__ import annotations

from harness.anomalies.kinds import Anomaly, Finding
from harness.anomalies.stress import Tally


def found(anomaly: Anomaly, *sagas: str) -> Finding:
    return Finding.of(anomaly, set(sagas), "")


def test_a_batch_whose_checks_name_other_sagas_for_the_same_anomalies_agrees() -> None:
    tally = Tally()

    tally.judge([found(Anomaly.LOST_UPDATE, "A", "B")], [found(Anomaly.LOST_UPDATE, "A", "B", "C")])

    assert tally.disagreements == 0
    assert tally.by_history == {Anomaly.LOST_UPDATE: 1} == tally.by_invariants


def test_a_batch_where_one_check_finds_a_dirty_read_more_is_a_disagreement() -> None:
    tally = Tally()
    both = [found(Anomaly.EARLY_COMPENSATION, "L")]

    tally.judge(both, [*both, found(Anomaly.DIRTY_READ, "B")])
    tally.judge(both, both)

    assert tally.disagreements == 1
    assert tally.by_history == {Anomaly.EARLY_COMPENSATION: 2}
    assert tally.by_invariants == {Anomaly.EARLY_COMPENSATION: 2, Anomaly.DIRTY_READ: 1}
