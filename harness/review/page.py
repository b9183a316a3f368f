"""The review page: findings at the top, one row per dimension, both styles side by side, every
cell linking to its evidence and every row naming the run (and its conditions) behind it; then
the saga's flow, from the spec and from the traces.

``review.html`` is self-contained (inline CSS and SVG, no script); ``review.md`` holds the same
findings and rows for a document (links relative to the review's folder, or to ``base``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from harness.compare.conditions import RunConditions
from harness.report.diagrams.mermaid import (
    parse_sequence,
    parse_state,
    sequence_text,
    state_text,
)
from harness.report.diagrams.sequence_svg import sequence_svg
from harness.report.diagrams.spec import (
    choreography_sequence,
    orchestration_sequence,
    state_diagram,
)
from harness.report.diagrams.state_svg import state_svg
from harness.report.render import ENV
from harness.report.view import ScenarioDetail, build_view
from harness.review.dimensions import DIMENSIONS, STYLES, Dimension, Row, runs
from harness.review.gather import Evidence, OperabilityEvidence

SHOWN = "shipment_failed"
"""The scenario whose traces the page draws: the pivot fails, every compensation runs."""


@dataclass(frozen=True)
class Finding:
    text: str
    ok: bool | None
    dimension: str
    required: bool = False


@dataclass(frozen=True)
class ReviewPage:
    rows: list[Row]
    findings: list[Finding]
    runs: dict[str, tuple[str, RunConditions]]
    spec_states: Markup
    spec_sequences: dict[str, Markup]
    shown: ScenarioDetail | None
    problems: list[str]
    left_out: list[str]
    absent: dict[str, str]
    """Dimensions with no rows because a part they read did not run: why, in a line."""
    order: list[str]
    """The dimensions shown, with rows or saying why they have none, in the providers' order."""

    @property
    def held(self) -> bool:
        """Whether everything required held (a missed performance target does not fail it)."""
        failed = [f for f in self.findings if f.required and f.ok is False]
        return not failed and not self.problems

    @property
    def dimensions(self) -> list[str]:
        return list(dict.fromkeys(row.dimension for row in self.rows))

    def rows_of(self, dimension: str) -> list[Row]:
        return [row for row in self.rows if row.dimension == dimension]


def row_ok(row: Row) -> bool | None:
    marks = [cell.ok for cell in row.cells.values() if cell.ok is not None]
    return all(marks) if marks else None


def build_page(evidence: Evidence, dimensions: tuple[Dimension, ...] | None = None) -> ReviewPage:
    given = [(d.name, d.rows(evidence)) for d in (dimensions or tuple(DIMENSIONS))]
    rows = [row for _, mine in given for row in mine]
    absent = {
        name: evidence.absent[name] for name, mine in given if not mine and name in evidence.absent
    }
    order = [
        name
        for provider, mine in given
        for name in ([row.dimension for row in mine] if mine else [provider])
        if mine or provider in absent
    ]
    findings = [Finding(row.finding, row_ok(row), row.dimension, row.required) for row in rows]
    catalogue = evidence.catalogue
    shown = None
    if catalogue is not None and catalogue.traces:
        view = build_view(catalogue.results, catalogue.traces, catalogue.health)
        shown = next((d for d in view.details if d.name == SHOWN), view.details[0])
    spec = evidence.definition.spec
    return ReviewPage(
        rows=rows,
        findings=findings,
        runs=runs(evidence),
        spec_states=Markup(state_svg(parse_state(state_text(state_diagram(spec))))),
        spec_sequences={
            "orchestration": Markup(
                sequence_svg(parse_sequence(sequence_text(orchestration_sequence(spec))))
            ),
            "choreography": Markup(
                sequence_svg(
                    parse_sequence(sequence_text(choreography_sequence(evidence.definition)))
                )
            ),
        },
        shown=shown,
        problems=list(evidence.problems),
        left_out=list(evidence.left_out),
        absent=absent,
        order=list(dict.fromkeys(order)),
    )


def write_page(evidence: Evidence) -> tuple[Path, ReviewPage]:
    """review.html and review.md in the review's folder (and the operability evidence)."""
    page = build_page(evidence)
    out = evidence.out
    if evidence.operability is not None:
        (evidence.operability.folder / "operability.md").write_text(
            operability_markdown(evidence.operability), encoding="utf-8"
        )
    html = out / "review.html"
    html.write_text(render_html(page), encoding="utf-8")
    (out / "review.md").write_text(render_markdown(page), encoding="utf-8")
    return html, page


def render_html(page: ReviewPage) -> str:
    return ENV.get_template("review.html").render(page=page, styles=STYLES)


def render_markdown(page: ReviewPage, base: str = "") -> str:
    """The findings and rows in Markdown; links are prefixed with ``base`` (a document that
    sits elsewhere than the review's folder)."""
    return ENV.get_template("review.md").render(page=page, styles=STYLES, base=base)


def operability_markdown(found: OperabilityEvidence) -> str:
    lines = [
        "# Operability: sagas waiting for an operator",
        "",
        f"Run conditions: {found.conditions.line()}.",
        "",
        "Each style ran the catalogue's two scenarios that end waiting for an operator; the"
        " monitor's intervention queue was read (`listed`), then the saga that failed to"
        " compensate was retried and the one refused after the pivot resolved, each through its"
        " style's own protocol, as the monitor's buttons do.",
        "",
        "| style | scenario | in the queue | action | result | took |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.variant} | {c.scenario} | {'yes' if c.listed else 'NO'} | {c.action} | {c.result}"
        f" | {c.ms:,.0f} ms |"
        for c in found.checks
    ]
    health = found.health
    verdict = "yes" if health.one_trace_per_saga else f"NO ({len(health.split)} split)"
    lines += ["", f"Each saga one trace, the operator's action included: {verdict}.", ""]
    return "\n".join(lines)
