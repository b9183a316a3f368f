"""What the report shows, computed once for both its HTML and its Markdown.

Latencies come from the traces (the harness's root span per saga, the same in both styles);
outcomes, equivalence and invariants from ``results.json`` when there is one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from harness.compare.results import Results
from harness.compare.scenarios import CATALOGUE
from harness.report.charts import Chart, latency_overview, shared_axis, strips, swimlanes
from harness.report.stats import (
    Spread,
    VariantStats,
    median_run,
    median_saga,
    scenario_stats,
)
from harness.report.traces import SagaMetrics, SagaTrace, saga_metrics

VARIANTS = ("orchestration", "choreography")
TEACHES = {s.name: s.teaches for s in CATALOGUE}


@dataclass(frozen=True)
class ScenarioRow:
    """One line of the scenario table: both variants' outcomes, checks and latency."""

    scenario: str
    outcomes: dict[str, str]
    invariants: dict[str, bool | None]
    equivalent: bool | None
    differences: list[str]
    latency: dict[str, Spread | None]
    quiescence: dict[str, Spread | None]


@dataclass(frozen=True)
class Split:
    """Where the median saga's time went: parts of its end-to-end latency, in ms."""

    variant: str
    saga: SagaMetrics

    def share(self, part: float) -> float:
        return 100 * part / self.saga.e2e_ms if self.saga.e2e_ms > 0 else 0.0


@dataclass(frozen=True)
class ScenarioDetail:
    """A scenario's section: its numbers per variant and its charts on one time axis."""

    name: str
    teaches: str
    stats: dict[str, VariantStats]
    splits: list[Split]
    charts: list[Chart]


@dataclass(frozen=True)
class ReportView:
    results: Results | None
    repeats: int
    rows: list[ScenarioRow]
    overview: Chart
    details: list[ScenarioDetail]


def build_view(results: Results | None, traces: list[SagaTrace]) -> ReportView:
    metrics = [saga_metrics(t) for t in traces]
    stats = scenario_stats(metrics)
    names = list(dict.fromkeys([*(r.scenario for r in results.results)] if results else []))
    names += [name for name in stats if name not in names]
    rows = [_row(name, results, traces, stats.get(name, {})) for name in names]
    latencies = [(r.scenario, {v: s for v, s in r.latency.items() if s}) for r in rows]
    return ReportView(
        results=results,
        repeats=max([results.repeats if results else 1, *(m.repeat for m in metrics)]),
        rows=rows,
        overview=latency_overview(latencies, "End-to-end latency per scenario"),
        details=[_detail(name, stats[name], traces, metrics) for name in names if name in stats],
    )


def _row(
    name: str,
    results: Results | None,
    traces: list[SagaTrace],
    stats: dict[str, VariantStats],
) -> ScenarioRow:
    ends = [
        (t.repeat, t.variant, _label(t.outcome, t.reason)) for t in traces if t.scenario == name
    ]
    if results is not None:
        ends = [
            (r.repeat, r.variant, _label(r.status, r.reason))
            for r in results.results
            if r.scenario == name
        ]
    return ScenarioRow(
        scenario=name,
        outcomes={
            v: _outcomes([(n, label) for n, var, label in ends if var == v]) for v in VARIANTS
        },
        invariants={v: _invariants(results, name, v) for v in VARIANTS},
        equivalent=_equivalent(results, name),
        differences=(results.differences.get(name, []) if results else []),
        latency={v: _latency(stats, results, name, v) for v in VARIANTS},
        quiescence={v: stats[v].quiescence if v in stats else None for v in VARIANTS},
    )


def _label(status: str, reason: str | None) -> str:
    return status + (f" ({reason})" if reason else "")


def _outcomes(ends: list[tuple[int, str]]) -> str:
    """The run's outcome counts; once when every run agrees, else per run."""
    if not ends:
        return "-"
    per_run: dict[int, list[str]] = defaultdict(list)
    for repeat, label in ends:
        per_run[repeat].append(label)
    texts = {repeat: _counts(labels) for repeat, labels in sorted(per_run.items())}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "; ".join(f"run {repeat}: {text}" for repeat, text in texts.items())


def _counts(labels: list[str]) -> str:
    if len(labels) == 1:
        return labels[0]
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    return ", ".join(f"{n} x {label}" for label, n in counts.items())


def _invariants(results: Results | None, scenario: str, variant: str) -> bool | None:
    checks = [
        c
        for c in (results.runs if results else [])
        if (c.scenario, c.variant) == (scenario, variant)
    ]
    return all(all(c.invariants.values()) for c in checks) if checks else None


def _equivalent(results: Results | None, scenario: str) -> bool | None:
    compared = [c for c in (results.comparisons if results else []) if c.scenario == scenario]
    return all(not c.differences for c in compared) if compared else None


def _latency(
    stats: dict[str, VariantStats], results: Results | None, scenario: str, variant: str
) -> Spread | None:
    """From the traces; from ``results.json`` when a variant's traces are missing."""
    if variant in stats:
        return stats[variant].latency
    rows = results.results if results else []
    return Spread.of(r.duration_ms for r in rows if (r.scenario, r.variant) == (scenario, variant))


def _detail(
    name: str, stats: dict[str, VariantStats], traces: list[SagaTrace], metrics: list[SagaMetrics]
) -> ScenarioDetail:
    mine = [m for m in metrics if m.scenario == name]
    shown = {v: _shown_run(name, v, traces, mine) for v in VARIANTS}
    shown = {v: sagas for v, sagas in shown.items() if sagas}
    axis = shared_axis(max(_reach(sagas) for sagas in shown.values()))
    charts = []
    for variant, sagas in shown.items():
        runs = stats[variant].runs
        repeat = sagas[0].repeat
        where = f"run {repeat} of {runs}" + (", the median one" if runs > 2 else "")
        if len(sagas) == 1:
            caption = f"{variant}: {_label(sagas[0].outcome, sagas[0].reason)}, {where}"
            charts.append(swimlanes(sagas[0], axis, caption))
        else:
            charts.append(strips(sagas, axis, f"{variant}: all {len(sagas)} sagas of {where}"))
    splits = [
        Split(v, median_saga([m for m in mine if m.variant == v])) for v in VARIANTS if v in stats
    ]
    return ScenarioDetail(name, TEACHES.get(name, ""), stats, splits, charts)


def _shown_run(
    name: str, variant: str, traces: list[SagaTrace], metrics: list[SagaMetrics]
) -> list[SagaTrace]:
    """The sagas of the run the report draws: the median run by its slowest saga."""
    mine = [m for m in metrics if m.variant == variant]
    if not mine:
        return []
    repeat = median_run(mine)
    return [t for t in traces if (t.scenario, t.variant, t.repeat) == (name, variant, repeat)]


def _reach(sagas: list[SagaTrace]) -> float:
    """From the run's first saga start to its last outcome, in ms: what the axis must hold."""
    first = min(s.root.start_ns for s in sagas)
    return (max(s.root.end_ns for s in sagas) - first) / 1e6
