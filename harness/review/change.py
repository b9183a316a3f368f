"""The versioning matrix tallied per style, for the review's change rows: which arms ended every
parked version-1 saga right by each strategy, what the arm without versioning left, the
operator actions, how long until no version-1 saga was left, and the defects.

Plain sentences over `VersioningDocument`; `harness.review.dimensions.Change` makes the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.versioning.cell import VariantResult, action_count
from harness.versioning.local import defects
from harness.versioning.matrix import PAIRS, StoreCell, VersioningDocument
from harness.versioning.report import cell_key

NO_VERSIONING = {"orchestration": PAIRS[0][0], "choreography": PAIRS[0][1]}
"""Each style's arm without versioning: release 2's code as written (none), a reader that
refuses any definition but its own (strict)."""


@dataclass(frozen=True)
class Outcome:
    """One style's result in one cell of the matrix."""

    item: StoreCell
    result: VariantResult
    stores: int
    """How many stores the matrix ran on (a label names the store when more than one)."""

    @property
    def strategy(self) -> str:
        return self.item.cell.strategy

    @property
    def arm(self) -> str:
        return self.result.arm

    @property
    def key(self) -> str:
        return cell_key(self.item)

    @property
    def label(self) -> str:
        store = f"{self.item.store} " if self.stores > 1 else ""
        return f"{store}{self.arm} {self.strategy}"

    @property
    def sagas(self) -> int:
        return len(self.result.sagas)

    @property
    def all_right(self) -> bool:
        return bool(self.result.sagas) and self.result.right == self.sagas

    @property
    def stuck(self) -> int:
        return sum(self.result.stuck.values())

    @property
    def actions(self) -> int:
        return action_count(self.result)

    def summary(self) -> str:
        """Every figure of the cell in one line (a link's title)."""
        r = self.result
        gone = "never" if r.v1_gone_s is None else f"{r.v1_gone_s:.1f} s"
        return (
            f"{r.right}/{self.sagas} right end, {r.misrecorded} recorded as another version;"
            f" stuck: {stuck_text(r)}; {r.dead_letters} dead letters;"
            f" {self.actions} operator actions; no v1 saga left after: {gone}"
        )


def stuck_text(result: VariantResult) -> str:
    if not result.stuck:
        return "0"
    return ", ".join(f"{n} {cause}" for cause, n in sorted(result.stuck.items()))


@dataclass(frozen=True)
class StyleTally:
    """One style's cells of the versioning matrix, in the matrix's order."""

    style: str
    outcomes: tuple[Outcome, ...]

    @classmethod
    def of(cls, doc: VersioningDocument, style: str) -> StyleTally:
        stores = len(doc.stores)
        return cls(
            style,
            tuple(
                Outcome(item, result, stores)
                for item in doc.cells
                for result in item.cell.variants
                if result.variant == style
            ),
        )

    @property
    def strategies(self) -> list[str]:
        return list(dict.fromkeys(o.strategy for o in self.outcomes))

    @property
    def arms(self) -> list[str]:
        return list(dict.fromkeys(o.arm for o in self.outcomes))

    def right_by(self, strategy: str) -> list[str]:
        """The arms that brought every parked saga to its right end by this strategy."""
        return [o.arm for o in self.outcomes if o.strategy == strategy and o.all_right]

    def right_text(self) -> str:
        """``swap: patched, auto-upgrade; rolling: ...``, and the arms that ended every saga
        right but recorded some as another version."""
        parts = [
            f"{s}: {_names(self.right_by(s)) or f'none of {len(self.arms)} arms'}"
            for s in self.strategies
        ]
        misrecorded = list(
            dict.fromkeys(o.arm for o in self.outcomes if o.all_right and o.result.misrecorded)
        )
        if misrecorded:
            parts.append(f"recorded as another version by {_names(misrecorded)}")
        return "; ".join(parts)

    def right_sentence(self) -> str:
        """By both strategies, by one only: the arms that ended every saga right."""
        strategies = self.strategies
        every = [a for a in self.arms if all(a in self.right_by(s) for s in strategies)]
        said = [f"{_names(every)} ({_both(strategies)})"] if every else []
        for strategy in strategies:
            only = [a for a in self.right_by(strategy) if a not in every]
            if only:
                said.append(f"{_names(only)} ({strategy} only)")
        return _and(said) if said else "none, by any strategy"

    @property
    def unversioned(self) -> list[Outcome]:
        """The cells of the arm without versioning, one per strategy."""
        return [o for o in self.outcomes if o.arm == NO_VERSIONING[self.style]]

    def unversioned_text(self) -> str:
        return "; ".join(
            f"{o.strategy}: {o.stuck} of {o.sagas} stuck{_causes(o)},"
            f" {_count(o.result.dead_letters, 'dead letter')},"
            f" {_count(o.actions, 'operator action')}"
            for o in self.unversioned
        )

    @property
    def needing_action(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.actions]

    def actions_text(self) -> str:
        needing = self.needing_action
        if not needing:
            return f"none in any of {len(self.outcomes)} cells"
        each = ", ".join(f"{o.label} {o.actions}" for o in needing)
        return f"{self.actions} in {len(needing)} of {len(self.outcomes)} cells: {each}"

    @property
    def actions(self) -> int:
        return sum(o.actions for o in self.outcomes)

    def actions_title(self) -> str:
        """What each action is, per cell."""
        return "; ".join(
            f"{o.label}: "
            + ", ".join(
                f"{a.text} (x{a.times})" if a.times > 1 else a.text
                for a in o.result.operator_actions
            )
            for o in self.needing_action
        )

    def gone(self, strategy: str | None = None) -> list[float]:
        """Seconds until no v1 saga was left, in the cells where every one ended."""
        return [
            o.result.v1_gone_s
            for o in self.outcomes
            if o.result.v1_gone_s is not None and strategy in (None, o.strategy)
        ]

    def gone_text(self) -> str:
        parts = [f"{s} {_range(self.gone(s))}" for s in self.strategies if self.gone(s)]
        never = [o.label for o in self.outcomes if o.result.v1_gone_s is None]
        if never:
            parts.append(f"never in {len(never)} cells ({', '.join(never)})")
        return "; ".join(parts)

    def defects(self) -> list[str]:
        """Invariants violated, or version 2 unable to run its own sagas (not an arm's cost)."""
        return [f"{o.label}: {defect}" for o in self.outcomes for defect in defects(o.result)]

    def defects_text(self) -> str:
        found = self.defects()
        if found:
            return "; ".join(found)
        fresh = max((len(o.result.fresh) for o in self.outcomes), default=0)
        cells = len(self.outcomes)
        return (
            f"{cells} of {cells} cells: invariants held, version 2's own {fresh} sagas ended right"
        )


def unversioned_finding(tallies: dict[str, StyleTally]) -> str:
    """What the arm without versioning leaves in each style, strategy by strategy: ``a swap
    leaves 6 of 7 version-1 sagas stuck in the orchestration (...) against 7 of 7 in ...``."""
    first = next(iter(tallies.values()))
    said = []
    for strategy in first.strategies:
        found = [
            (style, o)
            for style, tally in tallies.items()
            for o in tally.unversioned
            if o.strategy == strategy
        ]
        parts = [_left(style, o, first=n == 0) for n, (style, o) in enumerate(found)]
        if parts:
            said.append(f"{_article(strategy)} leaves " + " against ".join(parts))
    if not said:
        return "No arm without versioning ran."
    arms = ", ".join(NO_VERSIONING[style] for style in tallies)
    return f"Without versioning ({arms}), " + "; ".join(said) + "."


def _left(style: str, o: Outcome, *, first: bool) -> str:
    what = " version-1 sagas stuck" if first else ""
    detail = [", ".join(sorted(o.result.stuck))] if o.result.stuck else []
    if o.actions:
        detail.append(f"{_count(o.actions, 'operator action')} to end them")
    said = f" ({'; '.join(detail)})" if detail else ""
    return f"{o.stuck} of {o.sagas}{what} in the {style}{said}"


def right_finding(tallies: dict[str, StyleTally]) -> str:
    """Per style, the arms that ended every version-1 saga right, by both strategies or one."""
    said = [f"in the {style} {t.right_sentence()}" for style, t in tallies.items()]
    return "Arms that brought every version-1 saga to its right end: " + "; ".join(said) + "."


def actions_finding(tallies: dict[str, StyleTally]) -> str:
    said = [
        f"{t.actions} in the {style} ({len(t.needing_action)} of {len(t.outcomes)} cells)"
        for style, t in tallies.items()
    ]
    return "Operator actions needed before every version-1 saga ended: " + _and(said) + "."


def gone_finding(tallies: dict[str, StyleTally]) -> str:
    said = [f"{_range(t.gone())} in the {s}" for s, t in tallies.items() if t.gone()]
    if not said:
        return "In no cell did every version-1 saga end."
    return (
        "Where every version-1 saga ended, the last one ended "
        + _and(said)
        + " after the upgrade started."
    )


def _causes(o: Outcome) -> str:
    return f" ({', '.join(sorted(o.result.stuck))})" if o.result.stuck else ""


def _range(values: Sequence[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.0f} s" if round(low) == round(high) else f"{low:.0f}-{high:.0f} s"


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _names(names: Sequence[str]) -> str:
    return ", ".join(names)


def _and(parts: Sequence[str]) -> str:
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


def _both(strategies: Sequence[str]) -> str:
    return "both strategies" if len(strategies) == 2 else " and ".join(strategies)


def _article(strategy: str) -> str:
    return "a swap" if strategy == "swap" else f"a {strategy} upgrade"
