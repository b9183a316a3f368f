"""The review's dimensions: each a provider that reads the evidence and gives its rows.

A row compares both styles on one question; each cell holds the figure, whether it meets what
is asked of it (None: nothing is asked, it is a fact), a link to its evidence and, where the
evidence has parts (the anomaly lab's cells, the versioning matrix's cells), links to each. A
row names the run its figures come from, whose conditions the page prints beside it. A provider
whose evidence is missing gives no rows; where a part it reads was left out or did not finish,
the page says so in the dimension's place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from harness.anomalies.kinds import ABOUT, Anomaly
from harness.anomalies.matrix import LabDocument
from harness.anomalies.report import anchor, verdict
from harness.anomalies.results import CellRun
from harness.compare.conditions import RunConditions
from harness.report.stats import Spread, VariantStats, scenario_stats
from harness.report.traces import saga_metrics
from harness.review.change import (
    NO_VERSIONING,
    Outcome,
    StyleTally,
    actions_finding,
    gone_finding,
    right_finding,
    unversioned_finding,
)
from harness.review.gather import ChangeLines, Evidence, VersioningEvidence

STYLES = ("orchestration", "choreography")


@dataclass(frozen=True)
class Link:
    text: str
    href: str
    title: str = ""


@dataclass(frozen=True)
class Cell:
    text: str
    ok: bool | None
    href: str
    title: str = ""
    parts: tuple[Link, ...] = ()
    """Links to the parts of the evidence the figure sums up (shown after it, small)."""


@dataclass(frozen=True)
class Row:
    dimension: str
    question: str
    cells: dict[str, Cell]
    run: str
    """Which of the review's runs the figures come from (a key of `runs`)."""
    finding: str
    required: bool = False
    """Whether the review fails when a cell of this row fails (correctness, nothing lost or
    stuck, an operator's path); a target missed by a figure (a floor ratio) is reported only."""


class Dimension(Protocol):
    name: str

    def rows(self, evidence: Evidence) -> list[Row]: ...


def runs(evidence: Evidence) -> dict[str, tuple[str, RunConditions]]:
    """The review's runs that produced figures: key -> (what it was, its conditions)."""
    found: dict[str, tuple[str, RunConditions]] = {}
    if evidence.catalogue and evidence.catalogue.results.conditions:
        repeats = evidence.catalogue.results.repeats
        found["catalogue"] = (
            f"the catalogue on both styles, {repeats} run(s)",
            evidence.catalogue.results.conditions,
        )
    if evidence.operability:
        found["operability"] = (
            "the sagas waiting for an operator, acted on",
            evidence.operability.conditions,
        )
    if evidence.bench:
        found["bench"] = ("a short closed benchmark", evidence.bench.conditions)
    if evidence.chaos:
        found["chaos"] = ("a short chaos run", evidence.chaos.conditions)
    if evidence.anomalies:
        found["anomalies"] = (
            "the anomaly lab's matrix: each anomaly forced with its countermeasure off and on,"
            " both styles",
            evidence.anomalies.conditions,
        )
    if evidence.versioning:
        doc = evidence.versioning.doc
        found["versioning"] = (
            "the versioning matrix: version 2 deployed over parked version-1 sagas in every arm"
            f" of both styles, by {' and '.join(doc.strategies)}, {doc.per_position} saga(s) per"
            f" position; stuck after {doc.quiet_s:g} s without progress, a rolling upgrade's"
            f" old release drained for at most {doc.window_s:g} s",
            evidence.versioning.conditions,
        )
    found["code"] = ("the code, counted", evidence.code_conditions)
    return found


def _both(make: Callable[[str], Cell]) -> dict[str, Cell]:
    return {style: make(style) for style in STYLES}


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:,.0f} ms"


def _spread(spread: Spread) -> str:
    if spread.low == spread.high:
        return _ms(spread.median)
    return f"{_ms(spread.median)} ({_ms(spread.low)}-{_ms(spread.high)})"


class Correctness:
    """Equivalence, invariants, expected outcomes and the flow against the spec."""

    name = "correctness"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.catalogue
        if found is None:
            return []
        r = found.results
        scenarios = len({row.scenario for row in r.results})
        report = "catalogue/report.html"

        def invariants(style: str) -> Cell:
            checks = [c for c in r.runs if c.variant == style]
            held = sum(all(c.invariants.values()) for c in checks)
            names = len(r.invariants)
            return Cell(
                f"all {names} held in {held} of {len(checks)} runs",
                held == len(checks),
                f"{report}#scenarios",
            )

        def expected(style: str) -> Cell:
            mine = [row for row in r.results if row.variant == style]
            met = sum(row.met for row in mine)
            return Cell(f"{met} of {len(mine)} sagas", met == len(mine), f"{report}#scenarios")

        def flow(style: str) -> Cell:
            drifting = [d for d in r.drift if d.variant == style]
            checked = sum(1 for row in r.results if row.variant == style) if r.flows_checked else 0
            text = f"{len(drifting)} of {checked} sagas drift" if checked else "not checked"
            return Cell(text, not drifting if checked else None, f"{report}#flow-verdict")

        equivalent = all(not c.differences for c in r.comparisons)
        same = sum(1 for c in r.comparisons if not c.differences)
        rows = [
            Row(
                "correctness",
                "same outcome and net business state as the other style (equivalence)",
                _both(
                    lambda s: Cell(
                        f"{same} of {len(r.comparisons)} scenario runs equivalent",
                        equivalent,
                        f"{report}#scenarios",
                    )
                ),
                "catalogue",
                f"Both styles end {'every' if equivalent else 'NOT every'} scenario in the same"
                f" outcome and net business state ({same} of {len(r.comparisons)} scenario runs"
                f" over {scenarios} scenarios).",
            ),
            Row(
                "correctness",
                "conservation invariants after every run",
                _both(invariants),
                "catalogue",
                "Every invariant held after every run in both styles."
                if all(r.invariants.values())
                else "An invariant broke: "
                + ", ".join(k for k, v in r.invariants.items() if not v)
                + ".",
            ),
            Row(
                "correctness",
                "outcome the catalogue expects",
                _both(expected),
                "catalogue",
                "Every saga ended as the catalogue expects."
                if r.expected_met
                else "Some sagas did not end as expected.",
            ),
            Row(
                "correctness",
                "flow the spec declares for the expected outcome (drift)",
                _both(flow),
                "catalogue",
                f"Every saga's trace follows the flow the spec declares"
                f" ({r.flows_checked} checked)."
                if r.flows_checked and not r.drift
                else f"{len(r.drift)} sagas drift from the spec's flow."
                if r.drift
                else "Flows not checked.",
            ),
        ]
        return [replace(row, required=True) for row in rows]


class Latency:
    """End-to-end latency and work after the outcome, from the catalogue's traces."""

    name = "latency"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.catalogue
        if found is None or not found.traces:
            return []
        stats = scenario_stats([saga_metrics(t) for t in found.traces])
        report = "catalogue/report.html"
        rows: list[Row] = []
        happy = stats.get("happy_path", {})
        if set(STYLES) <= set(happy):
            o, c = happy["orchestration"].latency.median, happy["choreography"].latency.median
            fast = "choreography" if c < o else "orchestration"
            rows.append(
                Row(
                    "latency",
                    "happy path, start to outcome: median (min-max)",
                    _both(
                        lambda s: Cell(_spread(happy[s].latency), None, f"{report}#s-happy_path")
                    ),
                    "catalogue",
                    f"At concurrency 1 the {fast} is"
                    f" {max(o, c) / max(min(o, c), 0.001):.1f}x as fast on"
                    f" the happy path ({_ms(min(o, c))} against {_ms(max(o, c))}).",
                )
            )
        rows.append(self._slowest(stats, report))
        rows.append(self._tail(stats, report))
        return rows

    def _slowest(self, stats: dict[str, dict[str, VariantStats]], report: str) -> Row:
        def cell(style: str) -> Cell:
            name, spread = max(
                ((n, s[style].latency) for n, s in stats.items() if style in s),
                key=lambda item: item[1].median,
            )
            return Cell(f"{name}: {_ms(spread.median)}", None, f"{report}#s-{name}")

        cells = _both(cell)
        return Row(
            "latency",
            "slowest scenario, median latency",
            cells,
            "catalogue",
            "The slowest scenario: " + "; ".join(f"{s} {cells[s].text}" for s in STYLES) + ".",
        )

    def _tail(self, stats: dict[str, dict[str, VariantStats]], report: str) -> Row:
        def cell(style: str) -> Cell:
            name, spread = max(
                ((n, s[style].tail) for n, s in stats.items() if style in s),
                key=lambda item: item[1].median,
            )
            if spread.median < 1:
                return Cell("none", True, f"{report}#scenarios")
            return Cell(f"{name}: +{_ms(spread.median)}", None, f"{report}#s-{name}")

        cells = _both(cell)
        return Row(
            "latency",
            "work going on after the outcome (longest, median)",
            cells,
            "catalogue",
            "Work after the outcome: " + "; ".join(f"{s} {cells[s].text}" for s in STYLES) + ".",
        )


class Throughput:
    """Throughput and CPU per saga in a closed loop, against each engine's floor."""

    name = "throughput"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.bench
        if found is None:
            return []
        doc = found.doc
        style_of = {"orchestration": "orchestration/remote", "choreography": "choreography"}
        measured = {
            m["style"]: m for m in doc["measurements"] if m["kind"] == "saga" and m["tracing"]
        }
        if not set(style_of.values()) <= set(measured):
            return []
        href = "bench/bench.md"

        def throughput(style: str) -> Cell:
            m = measured[style_of[style]]
            ratios = doc["verdict"].get(style_of[style], {}).get("ratios", {})
            parts = [f"{m['throughput']:.1f} sagas/s"]
            met: bool | None = None
            for floor, ratio in ratios.items():
                parts.append(f"{ratio['median']:.2f}x its {floor} (target {ratio['target']:g})")
                met = ratio["met"] if met is None else met and ratio["met"]
            return Cell("; ".join(parts), met, href)

        def cpu(style: str) -> Cell:
            m = measured[style_of[style]]
            return Cell(
                f"{m['cpu_ms_per_saga']:.0f} ms CPU per saga, p95 {_ms(m['p95_ms'])}", None, href
            )

        plan = doc["plan"]
        cells = _both(throughput)
        return [
            Row(
                "throughput",
                f"closed loop, {plan['orders']} sagas at concurrency {plan['concurrency']}:"
                " sagas/s, and against the engine's floor",
                cells,
                "bench",
                "Throughput: " + "; ".join(f"{s} {cells[s].text}" for s in STYLES) + ".",
            ),
            Row(
                "throughput",
                "CPU per saga (every process of the style) and p95 latency in that loop",
                _both(cpu),
                "bench",
                "CPU per saga: " + "; ".join(f"{s} {cpu(s).text}" for s in STYLES) + ".",
            ),
        ]


class Resilience:
    """Kills under load: what was lost, stuck or violated, and how fast each style recovered."""

    name = "resilience"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.chaos
        if found is None:
            return []
        reports = {r.variant: r for r in found.doc.variants}
        if not set(STYLES) <= set(reports):
            return []
        href = "chaos/chaos.md"
        kills = ", ".join(found.doc.kinds)

        def outcome(style: str) -> Cell:
            r = reports[style]
            failures = r.failures
            stuck = sum(r.stuck_by_step.values())
            text = f"{r.terminal} of {r.submitted} terminal, {len(r.lost)} lost, {stuck} stuck"
            text += "; invariants hold" if all(r.invariants.values()) else "; INVARIANT BROKEN"
            return Cell(text, not failures, href, "; ".join(failures))

        def recovery(style: str) -> Cell:
            killed = [k for k in reports[style].kills if k.at_s is not None]
            drained = [k.drained_s for k in killed if k.drained_s is not None]
            if not killed:
                return Cell("nothing of it was killed", None, href)
            if len(drained) < len(killed):
                return Cell(f"{len(killed) - len(drained)} kill(s) not drained", False, href)
            return Cell(f"backlog drained {max(drained):.1f} s after the worst kill", None, href)

        cells = _both(outcome)
        return [
            Row(
                "resilience",
                f"{found.doc.orders} orders at {found.doc.rate:g}/s while {kills} are killed"
                " and restarted",
                cells,
                "chaos",
                "Under kills of "
                + kills
                + ": "
                + "; ".join(f"{s} {cells[s].text}" for s in STYLES)
                + ".",
                required=True,
            ),
            Row(
                "resilience",
                "recovery after the kills",
                _both(recovery),
                "chaos",
                "Recovery: " + "; ".join(f"{s} {recovery(s).text}" for s in STYLES) + ".",
            ),
        ]


@dataclass(frozen=True)
class LabTally:
    """One style's cells of the anomaly lab's matrix, by anomaly."""

    cells: dict[Anomaly, list[CellRun]]

    @classmethod
    def of(cls, doc: LabDocument, style: str) -> LabTally:
        cells: dict[Anomaly, list[CellRun]] = {}
        for cell in doc.matrix:
            if cell.variant == style:
                cells.setdefault(cell.anomaly, []).append(cell)
        return cls(cells)

    def off(self, verdict_is: str) -> list[Anomaly]:
        """The anomalies whose countermeasure-off cell has this verdict."""
        return [a for a, cells in self.cells.items() if any(_off(c) == verdict_is for c in cells)]

    @property
    def can_happen(self) -> list[Anomaly]:
        cannot = self.off("cannot happen")
        return [a for a in self.cells if a not in cannot]

    @property
    def leaked(self) -> list[Anomaly]:
        """The anomalies still observed with a countermeasure on."""
        return [
            a for a, cells in self.cells.items() if any(c.observed and not c.off for c in cells)
        ]

    @property
    def prevented(self) -> list[Anomaly]:
        leaked = self.leaked
        return [a for a in self.can_happen if a not in leaked and self._on(a)]

    @property
    def disagree(self) -> int:
        return sum(not c.agree for cells in self.cells.values() for c in cells)

    @property
    def ok(self) -> bool:
        return all(c.as_expected for cells in self.cells.values() for c in cells)

    def _on(self, anomaly: Anomaly) -> list[CellRun]:
        return [c for c in self.cells[anomaly] if not c.off]

    def text(self) -> str:
        """How many appear off, how many are prevented on, which cannot happen; what failed."""
        appear, possible = self.off("observed"), self.can_happen
        parts = [
            f"{len(appear)} of {len(self.cells)} appear with their countermeasure off",
            f"{len(self.prevented)} of {len(possible)} prevented with it on",
        ]
        shown = {
            "cannot happen here": self.off("cannot happen"),
            "NOT forced with it off": self.off("not observed"),
            "STILL appear with it on": self.leaked,
        }
        parts += [f"{what}: {', '.join(names)}" for what, names in shown.items() if names]
        if self.disagree:
            parts.append(f"history and invariants DISAGREE in {_cells(self.disagree)}")
        return "; ".join(parts)

    def links(self, page: str) -> tuple[Link, ...]:
        """Each anomaly's cells in the lab's report (the first, with it off, where the on cells
        follow), titled with every cell's verdict."""
        return tuple(
            Link(
                f"{ABOUT[anomaly].number} {anomaly}",
                f"{page}#{anchor(cells[0])}",
                "; ".join(f"{c.setting}: {_shown(c)}" for c in cells),
            )
            for anomaly, cells in self.cells.items()
        )


def _off(cell: CellRun) -> str | None:
    return verdict(cell) if cell.off else None


def _shown(cell: CellRun) -> str:
    involved = f" ({', '.join(cell.involved)})" if cell.involved else ""
    return verdict(cell) + involved + ("" if cell.agree else ", checks disagree")


def _names(anomalies: Sequence[Anomaly]) -> str:
    return ", ".join(anomalies)


def _and(parts: Sequence[str]) -> str:
    return ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)


class Isolation:
    """The anomaly lab's matrix: which anomalies of concurrent sagas each style shows with
    their countermeasure off, which the countermeasures prevent, which cannot happen in it."""

    name = "isolation"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.anomalies
        if found is None:
            return []
        tallies = {style: LabTally.of(found.doc, style) for style in STYLES}
        if not all(t.cells for t in tallies.values()):
            return []
        ran = list(dict.fromkeys(cell.anomaly for cell in found.doc.matrix))
        which = (
            f"the {len(Anomaly)} anomalies"
            if len(ran) == len(Anomaly)
            else f"{len(ran)} of the {len(Anomaly)} anomalies ({_names(ran)})"
        )
        cells = {
            style: Cell(t.text(), t.ok, f"{found.page}#matrix", parts=t.links(found.page))
            for style, t in tallies.items()
        }
        return [
            Row(
                "isolation",
                f"{which} of concurrent sagas, each forced with its countermeasure off, then on"
                " (the anomaly lab)",
                cells,
                "anomalies",
                isolation_finding(tallies),
                required=True,
            )
        ]


def isolation_finding(tallies: dict[str, LabTally]) -> str:
    """Where the styles differ: the anomalies that appear in one style only, and why (they
    cannot happen in the other); then what the countermeasures leave."""
    appear = {style: t.off("observed") for style, t in tallies.items()}
    total = len(tallies[STYLES[0]].cells)
    both = [a for a in appear[STYLES[0]] if a in appear[STYLES[1]]]
    off: list[str] = []
    if both:
        off.append(f"{_count(both, total)} in both styles")
    for style, other in (STYLES, STYLES[::-1]):
        only = [a for a in appear[style] if a not in appear[other]]
        if only:
            cannot = [a for a in only if a in tallies[other].off("cannot happen")]
            why = f": they cannot happen in the {other}" if cannot == only else ""
            off.append(f"{_appear(only)} only in the {style} ({_names(only)}{why})")
    text = "With their countermeasure off, " + (_and(off) if off else "none appears")
    leaked = [
        f"{_names(t.leaked)} still {_verb(t.leaked)} in the {style}"
        for style, t in tallies.items()
        if t.leaked
    ]
    text += "; with it on, " + (_and(leaked) if leaked else "none appears in either style")
    disagree = sum(t.disagree for t in tallies.values())
    if disagree:
        text += f"; the history checker and the invariants disagree in {_cells(disagree)}"
    return text + "."


def _count(anomalies: Sequence[Anomaly], total: int) -> str:
    """``3 of the 5 anomalies appear``, ``all 5 anomalies appear``, ``lost_update appears``."""
    if total == 1:
        return f"{_names(anomalies)} appears"
    if len(anomalies) == total:
        return f"all {total} anomalies appear"
    return f"{len(anomalies)} of the {total} anomalies appear"


def _appear(anomalies: Sequence[Anomaly]) -> str:
    return f"{len(anomalies)} {_verb(anomalies)}"


def _cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def _verb(anomalies: Sequence[Anomaly]) -> str:
    return "appears" if len(anomalies) == 1 else "appear"


class Change:
    """Version 2 deployed over parked version-1 sagas (the versioning matrix): the arms that end
    every one right by each strategy, what no versioning leaves, the operator's work, how long
    until version 1 is gone, the lines of the change, and the defects (which fail the review)."""

    name = "change"

    def rows(self, evidence: Evidence) -> list[Row]:
        found = evidence.versioning
        if found is None:
            return []
        tallies = {style: StyleTally.of(found.doc, style) for style in STYLES}
        if not all(t.outcomes for t in tallies.values()):
            return []
        page = found.page
        parked = tallies[STYLES[0]].outcomes[0].sagas
        strategies = " and ".join(tallies[STYLES[0]].strategies)
        unversioned = ", ".join(f"{s} {NO_VERSIONING[s]}" for s in STYLES)

        def right(t: StyleTally) -> Cell:
            return Cell(t.right_text(), None, page, parts=_lanes(found, t.outcomes))

        def plain(t: StyleTally) -> Cell:
            return Cell(t.unversioned_text(), None, page, parts=_lanes(found, t.unversioned))

        def defects(t: StyleTally) -> Cell:
            return Cell(t.defects_text(), not t.defects(), page)

        return [
            Row(
                "change",
                f"version 2 deployed by {strategies} over {parked} version-1 sagas per style"
                f" ({found.doc.per_position} per position) parked at every step: the arms that"
                " brought every one to its right end",
                {s: right(t) for s, t in tallies.items()},
                "versioning",
                right_finding(tallies),
            ),
            Row(
                "change",
                f"without versioning ({unversioned}): stuck sagas, dead letters, operator actions",
                {s: plain(t) for s, t in tallies.items()},
                "versioning",
                unversioned_finding(tallies),
            ),
            Row(
                "change",
                "operator actions needed before every version-1 saga ends (one per"
                " deployment-wide step, one per saga for a per-saga step)",
                {
                    s: Cell(t.actions_text(), None, page, t.actions_title())
                    for s, t in tallies.items()
                },
                "versioning",
                actions_finding(tallies),
            ),
            Row(
                "change",
                "time from the upgrade's start until no version-1 saga was left, where every"
                " one ended",
                {s: Cell(t.gone_text(), None, page) for s, t in tallies.items()},
                "versioning",
                gone_finding(tallies),
            ),
            _lines_row(found),
            Row(
                "change",
                "no invariant violated and version 2's own sagas ended right, in every cell (a"
                " defect, not an arm's cost)",
                {s: defects(t) for s, t in tallies.items()},
                "versioning",
                "In every cell of both styles no invariant was violated and version 2's own"
                " sagas ended right."
                if not any(t.defects() for t in tallies.values())
                else "Defects: "
                + "; ".join(f"{s} {d}" for s, t in tallies.items() for d in t.defects())
                + ".",
                required=True,
            ),
        ]


def _lanes(found: VersioningEvidence, outcomes: Sequence[Outcome]) -> tuple[Link, ...]:
    """Each cell's swimlanes of a saga that crossed versions (or the report, when none were
    drawn), titled with every figure of the cell."""
    return tuple(Link(o.label, found.lanes.get(o.key, found.page), o.summary()) for o in outcomes)


def _lines_row(found: VersioningEvidence) -> Row:
    """The lines each style's part of the change added and removed, beside shared/'s."""
    lines = found.lines
    question = "lines of the change (version 2 and the arms), counted by git from the"
    question += " versioning branch's own commits"
    if lines is None:
        cell = Cell(f"not counted: {found.lines_missing}", None, found.page)
        return Row(
            "change",
            question,
            _both(lambda s: cell),
            "code",
            f"The lines of the change were not counted: {found.lines_missing}.",
        )
    o, c = lines.packages["orchestration"], lines.packages["choreography"]
    shared = lines.packages["shared"]
    return Row(
        "change",
        f"{question} (both share +{shared.added:,} -{shared.removed:,} in {shared.files} files"
        " of shared/)",
        _both(lambda s: _lines_cell(lines, s)),
        "code",
        f"The change added {c.added / max(o.added, 1):.1f}x the lines to the choreography that"
        f" it added to the orchestration ({c.added:,} against {o.added:,}, beside"
        f" {shared.added:,} in shared/ for both).",
    )


def _lines_cell(lines: ChangeLines, style: str) -> Cell:
    mine = lines.packages[style]
    return Cell(f"+{mine.added:,} -{mine.removed:,} in {mine.files} files", None, lines.page)


class Operability:
    """Stuck sagas reaching an operator, the actions that settle them, one trace per saga."""

    name = "operability"

    def rows(self, evidence: Evidence) -> list[Row]:
        rows: list[Row] = []
        found = evidence.operability
        if found is not None:
            by_style = {s: [c for c in found.checks if c.variant == s] for s in STYLES}

            def act(style: str) -> Cell:
                checks = by_style[style]
                text = "; ".join(
                    f"{c.scenario}: {'listed' if c.listed else 'NOT listed'}, {c.action}"
                    f" -> {c.result} in {_ms(c.ms)}"
                    for c in checks
                )
                return Cell(
                    text or "not run",
                    all(c.ok for c in checks) if checks else None,
                    "operability/operability.md",
                )

            cells = _both(act)
            rows.append(
                Row(
                    "operability",
                    "a saga waiting for an operator: in the monitor's queue, retried or resolved",
                    cells,
                    "operability",
                    "Both styles list a saga that needs a person in the monitor's intervention"
                    " queue and settle it by retry or resolve."
                    if all(c.ok for c in found.checks)
                    else "An intervention path failed: "
                    + "; ".join(f"{s}: {cells[s].text}" for s in STYLES)
                    + ".",
                )
            )
        catalogue = evidence.catalogue
        if catalogue is not None:
            health = catalogue.health
            sagas = {s: sum(1 for t in catalogue.traces if t.variant == s) for s in STYLES}
            split = {s: sum(1 for name in health.split if name.startswith(f"{s} ")) for s in STYLES}
            rows.append(
                Row(
                    "operability",
                    "one trace per saga (every span of a saga in the trace its start opened)",
                    _both(
                        lambda s: Cell(
                            f"{sagas[s] - split[s]} of {sagas[s]} sagas one trace",
                            split[s] == 0,
                            "catalogue/report.html#one-trace",
                        )
                    ),
                    "catalogue",
                    "Every saga is one trace in both styles."
                    if health.one_trace_per_saga
                    else f"{len(health.split)} sagas span several traces.",
                )
            )
        return [replace(row, required=True) for row in rows]


class CodeSize:
    """The size of each style's code, beside the code both share."""

    name = "code size"

    def rows(self, evidence: Evidence) -> list[Row]:
        code = evidence.code
        if not set(STYLES) <= set(code):
            return []
        o, c = code["orchestration"].lines, code["choreography"].lines
        shared = code["shared"].lines if "shared" in code else 0
        return [
            Row(
                "code size",
                f"lines of each style's own package (both share {shared:,} lines of shared/)",
                _both(
                    lambda s: Cell(
                        f"{code[s].lines:,} lines in {len(code[s].modules)} modules",
                        None,
                        "code-size.md",
                    )
                ),
                "code",
                f"The choreography takes {c / max(o, 1):.1f}x the code of the orchestration"
                f" ({c:,} against {o:,} lines, beside {shared:,} shared).",
            )
        ]


DIMENSIONS: Sequence[Dimension] = (
    Correctness(),
    Latency(),
    Throughput(),
    Resilience(),
    Isolation(),
    Change(),
    Operability(),
    CodeSize(),
)
"""The dimensions the page shows, in order; each reads the evidence of one or more parts of the
review (`harness.review.run.PARTS`) and gives no rows when it is missing."""
