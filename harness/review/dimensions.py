"""The review's dimensions: each a provider that reads the evidence and gives its rows.

A row compares both styles on one question; each cell holds the figure, whether it meets what
is asked of it (None: nothing is asked, it is a fact), and a link to its evidence. A row names
the run its figures come from, whose conditions the page prints beside it. A provider whose
evidence is missing gives no rows, and the page shows no row for it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from harness.compare.conditions import RunConditions
from harness.report.stats import Spread, VariantStats, scenario_stats
from harness.report.traces import saga_metrics
from harness.review.gather import Evidence

STYLES = ("orchestration", "choreography")


@dataclass(frozen=True)
class Cell:
    text: str
    ok: bool | None
    href: str
    title: str = ""


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
    Operability(),
    CodeSize(),
)
"""The dimensions the page shows, in order; isolation (the anomaly lab) and change
(versioning) join as providers of their own when their evidence exists."""
