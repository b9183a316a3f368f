"""The lab's report: the matrix and the stress figures as one HTML page and in Markdown.

Every cell of the matrix links to its section of the page: the interleaving in words, what the
history checker and the invariants found, how each saga settled, the swimlanes of its sagas
(drawn from the trace file by `harness.report.charts.swimlanes`, one lane per service) and its
history. The figures come from the run's document alone (`anomalies.json` beside the page);
each cell's history is written as JSON lines in ``histories/``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from harness.anomalies.history import write_jsonl
from harness.anomalies.kinds import ABOUT, Anomaly
from harness.anomalies.matrix import LabDocument
from harness.anomalies.results import CellRun
from harness.anomalies.scenarios import SCENARIOS
from harness.anomalies.stress import StressCell
from harness.report.charts import Chart, shared_axis, swimlanes
from harness.report.traces import SagaTrace, load_traces

_ENV = Environment(
    loader=PackageLoader("harness.anomalies", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
PAGE = "anomalies.html"
TRACES = "traces.jsonl"


@dataclass(frozen=True)
class CellView:
    """A matrix cell as the page shows it."""

    cell: CellRun
    anchor: str
    verdict: str
    story: tuple[str, ...]
    charts: tuple[Chart, ...]
    history_file: str


@dataclass(frozen=True)
class CostRow:
    """What one countermeasure costs: the figures with it on (the defaults) minus without it."""

    variant: str
    countermeasure: str
    p50_ms: float | None
    p95_ms: float | None
    throughput_per_s: float


def anchor(cell: CellRun) -> str:
    name = f"{cell.anomaly.value}-{cell.setting}-{cell.variant}"
    return "cell-" + "".join(c if c.isalnum() else "-" for c in name.lower())


def verdict(cell: CellRun) -> str:
    """observed / prevented / cannot happen (an off cell of a style where it cannot)."""
    if cell.observed:
        return "observed"
    if cell.off and not cell.expected:
        return "cannot happen"
    return "prevented" if not cell.off else "not observed"


def cell_views(doc: LabDocument, traces: Sequence[SagaTrace]) -> list[CellView]:
    by_saga = {t.saga_id: t for t in traces}
    views = []
    for cell in doc.matrix:
        found = _aligned([by_saga[end.saga_id] for end in cell.sagas if end.saga_id in by_saga])
        axis = shared_axis(max((t.root.duration_ms for t in found), default=1.0))
        letters = {end.saga_id: end for end in cell.sagas}
        charts = tuple(
            swimlanes(t, axis, f"saga {letters[t.saga_id].label} in {t.variant}") for t in found
        )
        views.append(
            CellView(
                cell=cell,
                anchor=anchor(cell),
                verdict=verdict(cell),
                story=SCENARIOS[cell.anomaly].story,
                charts=charts,
                history_file=f"histories/{anchor(cell).removeprefix('cell-')}.jsonl",
            )
        )
    return views


def _aligned(traces: list[SagaTrace]) -> list[SagaTrace]:
    """The sagas of a cell on one clock: each chart's zero is the first saga's start, so the
    interleaving reads down the page (a later saga's harness bar starts at that zero too)."""
    if not traces:
        return []
    zero = min(t.root.start_ns for t in traces)
    aligned = []
    for trace in traces:
        root = replace(trace.root, start_ns=zero)
        aligned.append(SagaTrace(root, [root, *(s for s in trace.spans if s is not trace.root)]))
    return aligned


def costs(stress: Sequence[StressCell]) -> list[CostRow]:
    """For each style, each setting with one countermeasure off against the defaults."""
    rows = []
    for on in (c for c in stress if c.setting == "on"):
        for other in stress:
            if other.variant != on.variant or other.setting in ("on", "off"):
                continue
            rows.append(
                CostRow(
                    variant=on.variant,
                    countermeasure=other.setting.removesuffix(" off"),
                    p50_ms=_minus(on.p50_ms, other.p50_ms),
                    p95_ms=_minus(on.p95_ms, other.p95_ms),
                    throughput_per_s=round(on.throughput_per_s - other.throughput_per_s, 2),
                )
            )
    return rows


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(a - b, 1)


def write_report(folder: Path, doc: LabDocument, traces_path: Path | None) -> Path:
    """anomalies.html, anomalies.md, anomalies.json and histories/ into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    traces = load_traces(traces_path) if traces_path is not None and traces_path.exists() else []
    views = cell_views(doc, traces)
    (folder / "histories").mkdir(exist_ok=True)
    for view in views:
        write_jsonl(folder / view.history_file, view.cell.history)
    (folder / "anomalies.json").write_text(
        json.dumps(document_json(doc), indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (folder / "anomalies.md").write_text(markdown(doc), encoding="utf-8")
    page = folder / PAGE
    page.write_text(_ENV.get_template(PAGE).render(**_context(doc, views)), encoding="utf-8")
    return page


def markdown(doc: LabDocument, page: str = PAGE) -> str:
    """The run in Markdown (no swimlanes), each matrix cell linking to its section of
    ``page``: ``anomalies.md`` beside the page, and the committed run in the docs."""
    return _ENV.get_template("anomalies.md").render(**_context(doc, cell_views(doc, []), page))


def document_json(doc: LabDocument) -> dict[str, object]:
    """The run as one JSON document (`--json`, and ``anomalies.json``)."""
    data = doc.model_dump(mode="json")
    data["ok"] = doc.ok
    for cell, shown in zip(doc.matrix, data["matrix"], strict=True):
        shown.update(
            observed=cell.observed,
            agree=cell.agree,
            as_expected=cell.as_expected,
            verdict=verdict(cell),
            involved=list(cell.involved),
        )
    for stressed, shown in zip(doc.stress, data["stress"], strict=True):
        shown["per_10k"] = {a.value: stressed.per_10k(a) for a in Anomaly}
    return data


def _context(doc: LabDocument, views: list[CellView], page: str = PAGE) -> dict[str, object]:
    variants = list(dict.fromkeys(c.variant for c in doc.matrix))
    rows: dict[tuple[Anomaly, str], dict[str, CellView]] = {}
    for view in views:
        rows.setdefault((view.cell.anomaly, view.cell.setting), {})[view.cell.variant] = view
    return {
        "doc": doc,
        "about": ABOUT,
        "anomalies": list(Anomaly),
        "variants": variants,
        "rows": rows,
        "views": views,
        "costs": costs(doc.stress),
        "page": page,
    }
