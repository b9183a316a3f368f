"""The report: one self-contained HTML page and the same tables in Markdown, from templates.

Everything is computed from ``results.json`` (outcomes, equivalence, invariants) and
``traces.jsonl`` (latency, swimlanes); the traces alone are enough for a report.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from harness.compare.results import Results, load_results
from harness.report.axis import ms_label
from harness.report.stats import Spread
from harness.report.traces import SagaTrace
from harness.report.view import ReportView, build_view

__all__ = ["load_results", "render_html", "render_markdown", "write_report"]

_ENV = Environment(
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


_ENV.filters.update(spread=_spread, spread_html=_spread_html, ms=ms_label, cell=_cell)


def write_report(folder: Path, results: Results | None, traces: list[SagaTrace]) -> Path:
    """Write report.html and report.md into ``folder``; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    view = build_view(results, traces)
    (folder / "report.md").write_text(render_markdown(view), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(render_html(view), encoding="utf-8")
    return page


def render_html(view: ReportView) -> str:
    return _ENV.get_template("report.html").render(view=view, mark=_html_mark)


def render_markdown(view: ReportView) -> str:
    return _ENV.get_template("report.md").render(view=view, mark=_text_mark)


def _text_mark(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "NO")


def _html_mark(value: bool | None) -> Markup:
    css = "na" if value is None else ("yes" if value else "no")
    return Markup('<span class="{}">{}</span>').format(css, _text_mark(value))
