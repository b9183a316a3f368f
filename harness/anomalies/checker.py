"""The history checker: each anomaly found from a history alone, as patterns of reads and writes.

It never looks at the business state or at the invariants (`invariants.py`), which find the
same anomalies from the state a run left: the two must agree. The patterns, for keys
``<kind>/<id>`` (`shared/services/audit.py`):

1. lost update — a saga writes a key blind (not from a value read in the same transaction)
   while the key no longer holds the value the saga last observed: what other sagas changed
   in between is lost (one finding per key whose blind writes lost a net change, naming the
   blind writers and the sagas whose writes they wiped);
2. dirty read — a saga is refused for insufficient points on a balance it read between
   another saga's deduction and that saga's restoring it, the restored points would have
   sufficed, and no serial order explains the refusal (the balance the key started with, less
   what other sagas deducted and kept, would have sufficed);
3. fuzzy read — a saga reads a price again, a catalogue change in between, and a charge it
   computed then stays (not refunded);
4. cancel overwritten — after a saga was seen to end otherwise, its order is written COMPLETED;
5. early compensation — in a saga that ended compensated, a forward step commits after its
   fence or its compensation found nothing to undo, and nothing undoes it after.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from harness.anomalies.history import CATALOGUE, Entry, ordered
from harness.anomalies.kinds import Anomaly, Finding
from shared.contracts import Reason, SagaStatus, StepName
from shared.saga import SagaSpec

DONE = "done"
"""A step's outcome when its service committed it (a replay is ``replayed``)."""


@dataclass
class Index:
    """A history in order, with each entry's position and the entries of each key and saga."""

    entries: list[Entry]
    at: dict[int, int] = field(default_factory=dict)
    by_key: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))
    by_saga: dict[str, list[Entry]] = field(default_factory=lambda: defaultdict(list))

    def __post_init__(self) -> None:
        for position, entry in enumerate(self.entries):
            self.at[id(entry)] = position
            self.by_saga[entry.saga].append(entry)
            if entry.key is not None and entry.kind in ("read", "write"):
                self.by_key[entry.key].append(entry)

    def pos(self, entry: Entry) -> int:
        return self.at[id(entry)]


def check(entries: Iterable[Entry], spec: SagaSpec) -> list[Finding]:
    """Every anomaly in a history (sorted by anomaly, then sagas)."""
    index = Index(ordered(entries))
    found = [
        *lost_updates(index),
        *dirty_reads(index),
        *fuzzy_reads(index),
        *cancels_overwritten(index),
        *early_compensations(index, spec),
    ]
    return sorted(set(found), key=lambda f: (f.anomaly, f.sagas, f.note))


def lost_updates(index: Index) -> list[Finding]:
    """One finding per key whose blind writes wiped out a net change: each blind write made
    while the key no longer held the value its writer last saw undoes the difference."""
    found = []
    for key, accesses in index.by_key.items():
        if not key.startswith("stock/"):
            continue
        seen: dict[str, tuple[int, int]] = {}
        """Each saga's last observation of the key: (position, value)."""
        current, wiped = 0, 0
        writers: set[str] = set()
        lost: set[str] = set()
        for n, e in enumerate(accesses):
            value = int(e.value or 0)
            if e.kind == "write" and e.read is None and e.saga in seen:
                since, last = seen[e.saga]
                if current != last:
                    wiped += last - current
                    writers.add(e.saga)
                    lost |= {
                        other.saga
                        for other in accesses[since + 1 : n]
                        if other.kind == "write" and other.saga != e.saga
                    }
            current = value
            seen[e.saga] = (n, value)
        if wiped:
            note = f"{', '.join(sorted(writers))} wrote {key} blind over {', '.join(sorted(lost))}"
            found.append(Finding.of(Anomaly.LOST_UPDATE, writers | lost, note))
    return found


def dirty_reads(index: Index) -> list[Finding]:
    points = {e.saga: e.points or 0 for e in index.entries if e.kind == "start"}
    ends = {e.saga: e.reason for e in reversed(index.entries) if e.kind == "end"}
    found = []
    for refusal in index.entries:
        # The refusal that decided the saga's end (a refusal after its end is a step of a saga
        # resurrected by a late commit: the early compensation's business, not this one's).
        if not _refused_for_points(refusal) or ends.get(refusal.saga) != Reason.INSUFFICIENT_POINTS:
            continue
        for read in index.by_saga[refusal.saga]:
            same_attempt = read.step == refusal.step and read.attempt == refusal.attempt
            if read.kind != "read" or not same_attempt:
                continue
            if not (read.key or "").startswith("points/"):
                continue
            given_back = _given_back_after(index, read)
            wanted, value = points.get(refusal.saga, 0), int(read.value or 0)
            dirty = given_back and value < wanted <= value + sum(given_back.values())
            if dirty and _unexplained(index, read, wanted):
                note = f"{refusal.saga} refused on {read.key}={value}, later given back"
                found.append(Finding.of(Anomaly.DIRTY_READ, {refusal.saga, *given_back}, note))
    return found


def _refused_for_points(entry: Entry) -> bool:
    return (
        entry.kind == "step"
        and entry.step == StepName.DEDUCT_POINTS
        and entry.outcome == "failed"
        and entry.reason == Reason.INSUFFICIENT_POINTS
    )


def _given_back_after(index: Index, read: Entry) -> dict[str, int]:
    """Other sagas' decrements of the key before the read that they undid after it."""
    at = index.pos(read)
    taken: dict[str, int] = {}
    back: set[str] = set()
    for e in index.by_key[read.key or ""]:
        if e.kind != "write" or e.saga == read.saga:
            continue
        if index.pos(e) < at and e.phase == "forward" and _decrement(e):
            taken[e.saga] = taken.get(e.saga, 0) + int(e.read or 0) - int(e.value or 0)
        elif index.pos(e) > at and e.phase == "compensate":
            back.add(e.saga)
    return {saga: n for saga, n in taken.items() if saga in back}


def _unexplained(index: Index, read: Entry, wanted: int) -> bool:
    """No serial order explains the refusal: even after every deduction by other sagas that
    stayed (never given back), the balance the key started with would have sufficed."""
    accesses = index.by_key[read.key or ""]
    first = accesses[0]
    start = int(
        first.read if first.kind == "write" and first.read is not None else first.value or 0
    )
    taken: dict[str, int] = {}
    for e in accesses:
        if e.kind != "write" or e.saga == read.saga:
            continue
        if e.phase == "forward" and _decrement(e):
            taken[e.saga] = taken.get(e.saga, 0) + int(e.read or 0) - int(e.value or 0)
        elif e.phase == "compensate":
            taken.pop(e.saga, None)
    return start - sum(taken.values()) >= wanted


def _decrement(e: Entry) -> bool:
    return e.read is not None and int(e.read) > int(e.value or 0)


def fuzzy_reads(index: Index) -> list[Finding]:
    found = []
    for saga, mine in index.by_saga.items():
        reads = [e for e in mine if e.kind == "read" and (e.key or "").startswith("price/")]
        for n, first in enumerate(reads):
            for second in reads[n + 1 :]:
                if second.key != first.key or second.value == first.value:
                    continue
                if _changed_between(index, first, second) and _charge_stays(index, second):
                    note = f"{saga} read {first.key} as {first.value}, then {second.value}"
                    found.append(Finding.of(Anomaly.FUZZY_READ, {saga}, note))
    return found


def _changed_between(index: Index, first: Entry, second: Entry) -> bool:
    start, end = index.pos(first), index.pos(second)
    return any(
        e.kind == "write" and e.saga != first.saga and start < index.pos(e) < end
        for e in index.by_key[first.key or ""]
    )


def _charge_stays(index: Index, read: Entry) -> bool:
    """A charge written in the step attempt that made the read, and not refunded after."""
    charge = f"charge/{read.saga}"
    writes = [e for e in index.by_saga[read.saga] if e.kind == "write" and e.key == charge]
    made = [w for w in writes if w.step == read.step and w.attempt == read.attempt]
    refunded = any(w.phase == "compensate" for w in writes)
    return bool(made) and not refunded


def cancels_overwritten(index: Index) -> list[Finding]:
    found = []
    for saga, mine in index.by_saga.items():
        ends = [e for e in mine if e.kind == "end" and e.outcome != SagaStatus.COMPLETED]
        if not ends:
            continue
        end, key = ends[0], f"order/{saga}"
        for write in mine:
            after = index.pos(write) > index.pos(end)
            if after and write.kind == "write" and write.key == key and write.value != end.outcome:
                note = f"{saga} ended {end.outcome}, then its order was written {write.value}"
                found.append(Finding.of(Anomaly.CANCEL_OVERWRITTEN, {saga}, note))
                break
    return found


def early_compensations(index: Index, spec: SagaSpec) -> list[Finding]:
    found = []
    for saga, mine in index.by_saga.items():
        ended = [e for e in mine if e.kind == "end"]
        if saga == CATALOGUE or not ended or ended[0].outcome != SagaStatus.COMPENSATED:
            continue
        leaked = [
            step
            for step in spec.forward_steps
            if spec.compensation_of(step) and _committed_after_undo(mine, step, spec)
        ]
        if leaked:
            note = f"{saga} ended compensated; committed after their undo: {', '.join(leaked)}"
            found.append(Finding.of(Anomaly.EARLY_COMPENSATION, {saga}, note))
    return found


def _committed_after_undo(mine: list[Entry], step: str, spec: SagaSpec) -> bool:
    """The step committed after its fence or compensation found nothing, and stayed."""
    compensation = spec.compensation_of(step)
    undone_first = leaked = False
    for e in mine:
        if e.step not in (step, compensation):
            continue
        fenced = e.kind == "fence" and e.outcome == "fenced"
        found_nothing = e.kind == "step" and e.step == compensation and e.outcome == "noop"
        if fenced or found_nothing:
            undone_first = True
        elif e.kind == "step" and e.step == step and e.outcome == DONE and undone_first:
            leaked = True
        elif e.kind == "step" and e.step == compensation and e.outcome == DONE:
            leaked = False
    return leaked
