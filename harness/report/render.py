"""The report: one self-contained HTML page and the same tables in Markdown, from templates.

Everything is computed from ``results.json`` (outcomes, equivalence, invariants, the run's
conditions) and ``traces.jsonl`` (latency, swimlanes, flows, drift, whether each saga is one
trace); the traces alone are enough for a report.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from harness.compare.results import Results, load_results
from harness.report.axis import ms_label
from harness.report.diagrams.svg import style_sheet
from harness.report.health import TraceHealth
from harness.report.palette import PALETTE, css_variables
from harness.report.stats import Spread
from harness.report.traces import SagaTrace
from harness.report.view import OWN_SCALE, ReportView, build_view

__all__ = ["ENV", "load_results", "render_html", "render_markdown", "write_report"]

ENV = Environment(
    loader=PackageLoader("harness.report", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def _spread(value: Spread | None) -> str:
    return "-" if value is None else value.label(unit="")


def _spread_html(value: Spread | None) -> Markup:
    """The median, then its range in small print that may wrap below it."""
    if value is None:
        return Markup("-")
    if value.low == value.high:
        return Markup("{}").format(ms_label(value.median))
    return Markup('{} <small class="range">({}&ndash;{})</small>').format(
        ms_label(value.median), ms_label(value.low), ms_label(value.high)
    )


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


GLOSSARY = (
    (
        "pivot",
        "the step after which the saga only goes forward (create_shipment): once it has"
        " committed, a cancel or the deadline is ignored and nothing is undone",
    ),
    (
        "fence",
        "what a cancel does to the step in flight before the pivot: its service tombstones it in"
        " one transaction, so an attempt that has not committed is refused (one that has"
        " committed is left alone and undone with the others)",
    ),
    (
        "reported",
        "a step is reported when its result reaches the engine: the activity returns, or the"
        " event leaves the outbox; a step may commit in its service some time before",
    ),
    (
        "hand-back",
        "in the choreography, the event with which a service passes the compensation chain to"
        " the previous service that acted (compensated, compensation_failed or refused)",
    ),
    ("outcome", "where the harness saw the saga end: the end of its root span"),
    (
        "quiescence",
        "when the saga's last span ended: work can go on after the outcome (an abandoned"
        " attempt, a redelivery answered by an inbox)",
    ),
    (
        "drift",
        "a difference between the flow the spec declares for the saga's expected outcome and the"
        " flow its trace shows: a step or trigger missing or extra, or steps out of order",
    ),
    (
        "median saga",
        "the saga whose latency is the median of its scenario and style: the one drawn",
    ),
)


ENV.filters.update(spread=_spread, spread_html=_spread_html, ms=ms_label, cell=_cell)
ENV.globals.update(
    palette=PALETTE,
    palette_css=css_variables,
    diagram_css=style_sheet,
    glossary=GLOSSARY,
    own_scale=f"{OWN_SCALE:g}",
)


def write_report(
    folder: Path,
    results: Results | None,
    traces: list[SagaTrace],
    health: TraceHealth | None = None,
) -> Path:
    """Write report.html and report.md into ``folder``; returns the HTML path. ``health``:
    whether the trace file keeps each saga in one trace (`harness.report.health`)."""
    folder.mkdir(parents=True, exist_ok=True)
    view = build_view(results, traces, health)
    (folder / "report.md").write_text(render_markdown(view), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(render_html(view), encoding="utf-8")
    return page


def render_html(view: ReportView) -> str:
    return ENV.get_template("report.html").render(view=view, mark=_html_mark)


def render_markdown(view: ReportView) -> str:
    return ENV.get_template("report.md").render(view=view, mark=_text_mark)


def _text_mark(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "NO")


def _html_mark(value: bool | None) -> Markup:
    css = "na" if value is None else ("yes" if value else "no")
    return Markup('<span class="{}">{}</span>').format(css, _text_mark(value))
