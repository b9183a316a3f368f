"""What the report shows, computed once for both its HTML and its Markdown.

Latencies come from the traces (the harness's root span per saga, the same in both styles);
outcomes, equivalence, invariants and the run's conditions from ``results.json`` when there is
one. Each scenario gets its flow read off the traces: sequence diagrams of the median saga of
each style, the distinct paths its sagas took, the drift from the spec and the trace diff.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from markupsafe import Markup

from harness.compare.results import Results
from harness.compare.scenarios import BY_NAME, CATALOGUE
from harness.report.axis import LinearAxis
from harness.report.charts import (
    PLOT_WIDTH,
    Chart,
    latency_overview,
    shared_axis,
    strips,
    swimlanes,
)
from harness.report.describe import describe
from harness.report.diagrams.mermaid import sequence_text
from harness.report.diagrams.sequence_svg import sequence_svg
from harness.report.diff import TraceDiff, trace_diff
from harness.report.drift import Drift, deadline_ms, definition_of, saga_drift
from harness.report.flow import SagaFlow, flow_of
from harness.report.health import TraceHealth
from harness.report.stats import (
    Spread,
    VariantStats,
    median_run,
    median_saga,
    scenario_stats,
)
from harness.report.trace_diagrams import distinct_paths, trace_sequence
from harness.report.traces import SagaMetrics, SagaTrace, saga_metrics
from harness.variants import VARIANTS

TEACHES = {s.name: s.teaches for s in CATALOGUE}
OWN_SCALE = 4.0
"""When one style's saga takes more than this many times the other's, the faster one is drawn
on its own scale as well (on the shared one it would be a few pixels wide)."""


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
class FlowPanel:
    """One style's flow in a scenario: its median saga as a sequence diagram, and the paths
    every saga of the scenario took, with their counts."""

    variant: str
    caption: str
    svg: Markup
    mermaid: str
    paths: list[tuple[str, int]]
    sagas: int


@dataclass(frozen=True)
class DriftSummary:
    """One style's drift in a scenario: each finding with the number of sagas showing it."""

    checked: int
    findings: list[tuple[str, int]]

    @property
    def drifting(self) -> bool:
        return bool(self.findings)


@dataclass(frozen=True)
class ScenarioDetail:
    """A scenario's section: what it injects, its numbers per variant, its flows, the drift and
    the diff, and its charts on one time axis (plus the fast style's own, when far apart)."""

    name: str
    teaches: str
    stats: dict[str, VariantStats]
    splits: list[Split]
    charts: list[Chart]
    description: str = ""
    panels: list[FlowPanel] = field(default_factory=list)
    diff: TraceDiff | None = None
    drift: dict[str, DriftSummary] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportView:
    results: Results | None
    repeats: int
    rows: list[ScenarioRow]
    overview: Chart
    details: list[ScenarioDetail]
    health: TraceHealth | None = None
    flows_checked: int = 0
    drifting: int = 0

    @property
    def harness_only(self) -> bool:
        return self.health is not None and self.health.harness_only

    def drift_of(self, scenario: str) -> dict[str, bool | None]:
        """Per style: whether the scenario's flow is as the spec declares (None: not checked)."""
        detail = next((d for d in self.details if d.name == scenario), None)
        found = detail.drift if detail is not None else {}
        return {v: (not found[v].drifting) if v in found else None for v in VARIANTS}


def build_view(
    results: Results | None, traces: list[SagaTrace], health: TraceHealth | None = None
) -> ReportView:
    metrics = [saga_metrics(t) for t in traces]
    stats = scenario_stats(metrics)
    names = list(dict.fromkeys([*(r.scenario for r in results.results)] if results else []))
    names += [name for name in stats if name not in names]
    rows = [_row(name, results, traces, stats.get(name, {})) for name in names]
    latencies = [(r.scenario, {v: s for v, s in r.latency.items() if s}) for r in rows]
    flows = {id(t): flow_of(t, deadline_ms(t.scenario)) for t in traces}
    definition = definition_of(results)
    drifts = {id(t): saga_drift(t, flows[id(t)], results, definition) for t in traces}
    checked = [d for d in drifts.values() if d is not None]
    details = [
        _detail(name, stats[name], traces, metrics, flows, drifts)
        for name in names
        if name in stats
    ]
    return ReportView(
        results=results,
        repeats=max([results.repeats if results else 1, *(m.repeat for m in metrics)]),
        rows=rows,
        overview=latency_overview(latencies, "End-to-end latency per scenario"),
        details=details,
        health=health,
        flows_checked=len(checked),
        drifting=sum(1 for d in checked if d),
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
    name: str,
    stats: dict[str, VariantStats],
    traces: list[SagaTrace],
    metrics: list[SagaMetrics],
    flows: dict[int, SagaFlow],
    drifts: dict[int, Drift | None],
) -> ScenarioDetail:
    mine = [m for m in metrics if m.scenario == name]
    shown = {v: _shown_run(name, v, traces, mine) for v in VARIANTS}
    shown = {v: sagas for v, sagas in shown.items() if sagas}
    reach = {v: _reach(sagas) for v, sagas in shown.items()}
    axis = shared_axis(max(reach.values()))
    charts = []
    for variant, sagas in shown.items():
        runs = stats[variant].runs
        repeat = sagas[0].repeat
        where = f"run {repeat} of {runs}" + (", the median one" if runs > 2 else "")
        if len(sagas) == 1:
            caption = f"{variant}: {_label(sagas[0].outcome, sagas[0].reason)}, {where}"
            markers = flows[id(sagas[0])].markers
            charts.append(swimlanes(sagas[0], axis, caption, markers))
            own = _own_axis(reach, variant)
            if own is not None:
                zoom = f"{variant}, on its own scale: {_label(sagas[0].outcome, sagas[0].reason)}"
                charts.append(swimlanes(sagas[0], own, zoom, markers, zoom=True))
        else:
            caption = f"{variant}: all {len(sagas)} sagas of {where}"
            charts.append(strips(sagas, axis, caption))
            own = _own_axis(reach, variant)
            if own is not None:
                charts.append(strips(sagas, own, f"{caption}, on its own scale", zoom=True))
    splits = [
        Split(v, median_saga([m for m in mine if m.variant == v])) for v in VARIANTS if v in stats
    ]
    # Several sagas (a race) may end differently: compare the median sagas of the outcome
    # most of them share, so both styles' diagrams and diff show the same path.
    common = _common_outcome(mine)
    medians = {
        v: _trace_of(
            median_saga([m for m in mine if m.variant == v and _ends(m) == common]), traces
        )
        for v in VARIANTS
        if any(m.variant == v and _ends(m) == common for m in mine)
    }
    median_flows = {v: flows[id(t)] for v, t in medians.items() if t is not None}
    every = {
        v: [flows[id(t)] for t in traces if (t.scenario, t.variant) == (name, v)] for v in VARIANTS
    }
    return ScenarioDetail(
        name,
        TEACHES.get(name, ""),
        stats,
        splits,
        charts,
        description=describe(BY_NAME[name]) if name in BY_NAME else "",
        panels=[_panel(name, v, medians[v], traces, flows) for v in median_flows if medians[v]],
        diff=trace_diff(name, median_flows, stats, every) if median_flows else None,
        drift=_drift_summary(name, traces, drifts),
    )


def _ends(saga: SagaMetrics) -> str:
    return _label(saga.outcome, saga.reason)


def _common_outcome(sagas: list[SagaMetrics]) -> str:
    """The outcome most sagas of the scenario ended in (both styles together)."""
    counts: dict[str, int] = defaultdict(int)
    for saga in sagas:
        counts[_ends(saga)] += 1
    return max(sorted(counts), key=lambda label: counts[label])


def _own_axis(reach: dict[str, float], variant: str) -> LinearAxis | None:
    """The faster style's own axis, when the other takes more than OWN_SCALE times as long."""
    if len(reach) < 2 or reach[variant] <= 0:
        return None
    if max(reach.values()) / reach[variant] <= OWN_SCALE:
        return None
    return LinearAxis.covering(reach[variant], PLOT_WIDTH)


def _trace_of(saga: SagaMetrics, traces: list[SagaTrace]) -> SagaTrace | None:
    return next(
        (t for t in traces if t.trace_id == saga.trace_id and t.order_id == saga.order_id), None
    )


def _panel(
    name: str,
    variant: str,
    median: SagaTrace | None,
    traces: list[SagaTrace],
    flows: dict[int, SagaFlow],
) -> FlowPanel:
    assert median is not None
    mine = [t for t in traces if (t.scenario, t.variant) == (name, variant)]
    ending = [t for t in mine if (t.outcome, t.reason) == (median.outcome, median.reason)]
    caption = f"{variant}: {median.order_id}, run {median.repeat}, the median saga of {len(mine)}"
    if len(ending) < len(mine):
        ending_label = _label(median.outcome, median.reason)
        caption = (
            f"{variant}: {median.order_id}, run {median.repeat}, the median of the"
            f" {len(ending)} of {len(mine)} sagas ending {ending_label}"
        )
    diagram = trace_sequence(flows[id(median)], caption)
    return FlowPanel(
        variant=variant,
        caption=caption,
        svg=Markup(sequence_svg(diagram)),
        mermaid=sequence_text(diagram),
        paths=distinct_paths([flows[id(t)] for t in mine]),
        sagas=len(mine),
    )


def _drift_summary(
    name: str, traces: list[SagaTrace], drifts: dict[int, Drift | None]
) -> dict[str, DriftSummary]:
    summary = {}
    for variant in VARIANTS:
        found = [drifts[id(t)] for t in traces if (t.scenario, t.variant) == (name, variant)]
        checked = [d for d in found if d is not None]
        if not checked:
            continue
        counts: dict[str, int] = defaultdict(int)
        for d in checked:
            for finding in d.findings:
                counts[finding] += 1
        summary[variant] = DriftSummary(len(checked), sorted(counts.items(), key=lambda kv: -kv[1]))
    return summary


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
