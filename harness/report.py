"""The report: one self-contained HTML page and the same tables in Markdown.

Everything is computed from ``results.json`` (outcomes, equivalence, invariants) and
``traces.jsonl`` (latency, span trees); either alone is enough for its part.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.traces import SagaTrace, Span, saga_metrics, variant_summary

VARIANTS = ("orchestration", "choreography")
COLOURS = {"orchestration": "#4c6ef5", "choreography": "#f08c00"}
SPLIT_COLOURS = {"work": "#2f9e44", "queue": "#e8590c", "coordination": "#868e96"}


def rows_from_traces(traces: list[SagaTrace]) -> list[dict[str, Any]]:
    """Outcome rows rebuilt from root spans, for a report made from a trace file alone."""
    return [
        {
            "variant": t.variant,
            "scenario": t.scenario,
            "order_id": t.order_id,
            "status": t.outcome,
            "reason": t.reason,
            "trace_id": t.trace_id,
            "duration_ms": round(t.root.duration_ms, 3),
        }
        for t in traces
    ]


def write_report(folder: Path, doc: dict[str, Any] | None, traces: list[SagaTrace]) -> Path:
    """Write report.html and report.md into ``folder``; returns the HTML path."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = doc["results"] if doc else rows_from_traces(traces)
    metrics = [saga_metrics(t) for t in traces]
    summary = variant_summary(metrics)
    table = scenario_table(rows, doc)
    (folder / "report.md").write_text(markdown(table, summary, doc), encoding="utf-8")
    page = folder / "report.html"
    page.write_text(html_page(table, summary, doc, traces, metrics), encoding="utf-8")
    return page


def scenario_table(rows: list[dict[str, Any]], doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One line per scenario: each variant's outcomes and latency, equivalence, invariants."""
    grouped: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[row["scenario"]][row["variant"]].append(row)
    diffs = (doc or {}).get("differences", {})
    checks = (doc or {}).get("invariants_by_run", {})
    table = []
    for scenario, by_variant in grouped.items():
        line: dict[str, Any] = {"scenario": scenario}
        for variant in VARIANTS:
            sagas = by_variant.get(variant, [])
            line[variant] = _outcomes(sagas)
            line[f"{variant}_ms"] = max((s["duration_ms"] for s in sagas), default=None)
            held = checks.get(f"{variant}/{scenario}")
            line[f"{variant}_invariants"] = None if held is None else all(held.values())
        line["equivalent"] = None if scenario not in diffs else not diffs[scenario]
        line["differences"] = diffs.get(scenario, [])
        table.append(line)
    return table


def _outcomes(sagas: list[dict[str, Any]]) -> str:
    if not sagas:
        return "—"
    labels = [s["status"] + (f" ({s['reason']})" if s.get("reason") else "") for s in sagas]
    if len(set(labels)) == 1:
        return labels[0] if len(labels) == 1 else f"{len(labels)} x {labels[0]}"
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    return ", ".join(f"{n} x {label}" for label, n in counts.items())


def _mark(value: bool | None) -> str:
    return "n/a" if value is None else ("yes" if value else "NO")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def markdown(
    table: list[dict[str, Any]], summary: dict[str, dict[str, float]], doc: dict[str, Any] | None
) -> str:
    lines = ["# saga-compare report", ""]
    if doc:
        invariants = ", ".join(f"{k} {_mark(v)}" for k, v in doc["invariants"].items())
        lines += [
            f"- Equivalent outcomes and state: **{_mark(doc['equivalent'])}**",
            f"- Invariants: {invariants}",
            f"- Expected outcomes met: **{_mark(doc['expected_met'])}**",
            "",
        ]
    lines += [
        "| scenario | orchestration | choreography | equivalent | invariants (o/c) "
        "| slowest saga (o/c) |",
        "|---|---|---|---|---|---|",
    ]
    for line in table:
        lines.append(
            f"| {line['scenario']} | {line['orchestration']} | {line['choreography']} "
            f"| {_mark(line['equivalent'])} "
            f"| {_mark(line['orchestration_invariants'])}/{_mark(line['choreography_invariants'])} "
            f"| {_ms(line['orchestration_ms'])} / {_ms(line['choreography_ms'])} |"
        )
    lines += ["", "## Latency and trace shape per variant", ""]
    lines += [
        "| variant | sagas | p50 | p95 | p99 | work | queue wait | coordination "
        "| spans/saga | messages/saga | retries |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, s in summary.items():
        lines.append(
            f"| {variant} | {s['sagas']:.0f} | {_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} "
            f"| {_ms(s['p99_ms'])} | {s['mean_work_ms']:.1f} ms | {s['mean_queue_ms']:.1f} ms "
            f"| {s['mean_coordination_ms']:.1f} ms | {s['mean_spans']:.1f} "
            f"| {s['mean_messages']:.1f} | {s['retries']:.0f} |"
        )
    differing = [line for line in table if line["differences"]]
    if differing:
        lines += ["", "## Differences", ""]
        for line in differing:
            lines += [f"- **{line['scenario']}**"] + [f"  - `{d}`" for d in line["differences"]]
    lines += [
        "",
        "Work = time in the shared step spans; queue wait = gaps between a message or task "
        "being sent and its handler starting; coordination = the rest of the end-to-end time.",
    ]
    return "\n".join(lines) + "\n"


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#212529;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #dee2e6;padding:4px 8px}
th{background:#f1f3f5;text-align:left}.no{color:#c92a2a;font-weight:bold}.yes{color:#2b8a3e}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}.wf{font:12px monospace}
.row{display:flex;align-items:center;height:16px}.label{width:46%;overflow:hidden;
white-space:nowrap;text-overflow:ellipsis}.lane{position:relative;flex:1;height:12px;
background:#f8f9fa}.bar{position:absolute;height:12px;min-width:1px}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def html_page(
    table: list[dict[str, Any]],
    summary: dict[str, dict[str, float]],
    doc: dict[str, Any] | None,
    traces: list[SagaTrace],
    metrics: list[Any],
) -> str:
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>saga-compare report</title>"]
    parts += [f"<style>{STYLE}</style></head><body><h1>saga-compare report</h1>"]
    if doc:
        parts.append(_verdict(doc))
    parts.append(_html_table(table))
    parts.append("<h2>End-to-end latency per scenario</h2>")
    parts.append(_latency_chart(table))
    parts.append("<h2>Where the time goes (mean per saga)</h2>")
    parts.append(_split_chart(summary))
    parts.append(_summary_table(summary))
    parts.append("<h2>Span waterfalls, side by side</h2>")
    parts.append(_waterfalls(traces))
    parts.append("</body></html>")
    return "".join(parts)


def _verdict(doc: dict[str, Any]) -> str:
    def cls(ok: bool) -> str:
        return "yes" if ok else "no"

    checks = " ".join(
        f"<span class='{cls(v)}'>{html.escape(k)}: {_mark(v)}</span>;"
        for k, v in doc["invariants"].items()
    )
    return (
        f"<p><b>Equivalent:</b> <span class='{cls(doc['equivalent'])}'>"
        f"{_mark(doc['equivalent'])}</span> &nbsp; <b>Expected outcomes met:</b> "
        f"<span class='{cls(doc['expected_met'])}'>{_mark(doc['expected_met'])}</span></p>"
        f"<p><b>Invariants:</b> {checks}</p>"
    )


def _cell(value: bool | None) -> str:
    return f"<td class='{'no' if value is False else 'yes'}'>{_mark(value)}</td>"


def _html_table(table: list[dict[str, Any]]) -> str:
    head = (
        "<table><tr><th>scenario</th><th>orchestration</th><th>choreography</th>"
        "<th>equivalent</th><th>invariants o</th><th>invariants c</th>"
        "<th>slowest o</th><th>slowest c</th><th>differences</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(line['scenario'])}</td>"
        f"<td>{html.escape(line['orchestration'])}</td>"
        f"<td>{html.escape(line['choreography'])}</td>{_cell(line['equivalent'])}"
        f"{_cell(line['orchestration_invariants'])}{_cell(line['choreography_invariants'])}"
        f"<td>{_ms(line['orchestration_ms'])}</td><td>{_ms(line['choreography_ms'])}</td>"
        f"<td>{'<br>'.join(html.escape(d) for d in line['differences'])}</td></tr>"
        for line in table
    )
    return head + body + "</table>"


def _latency_chart(table: list[dict[str, Any]]) -> str:
    values = [line[f"{v}_ms"] or 0 for line in table for v in VARIANTS]
    top = max(values, default=1) or 1
    row_h, label_w, width = 30, 190, 900
    height = row_h * len(table) + 30
    svg = [f"<svg width='{width}' height='{height}' role='img'>"]
    for i, line in enumerate(table):
        y = i * row_h + 4
        svg.append(
            f"<text x='0' y='{y + 16}' font-size='12'>{html.escape(line['scenario'])}</text>"
        )
        for j, variant in enumerate(VARIANTS):
            value = line[f"{variant}_ms"] or 0
            w = (width - label_w - 90) * value / top
            svg.append(
                f"<rect x='{label_w}' y='{y + j * 12}' width='{w:.1f}' height='11' "
                f"fill='{COLOURS[variant]}'><title>{variant}: {value:.0f} ms</title></rect>"
                f"<text x='{label_w + w + 4:.1f}' y='{y + j * 12 + 10}' font-size='10'>"
                f"{value:,.0f} ms</text>"
            )
    legend_y = height - 8
    for j, variant in enumerate(VARIANTS):
        svg.append(
            f"<rect x='{label_w + j * 140}' y='{legend_y - 9}' width='10' height='10' "
            f"fill='{COLOURS[variant]}'/><text x='{label_w + j * 140 + 14}' y='{legend_y}' "
            f"font-size='12'>{variant}</text>"
        )
    return "".join(svg) + "</svg>"


def _split_chart(summary: dict[str, dict[str, float]]) -> str:
    keys = {
        "work": "mean_work_ms",
        "queue": "mean_queue_ms",
        "coordination": "mean_coordination_ms",
    }
    top = max((sum(s[k] for k in keys.values()) for s in summary.values()), default=1) or 1
    width, label_w = 900, 190
    svg = [f"<svg width='{width}' height='{36 * len(summary) + 30}' role='img'>"]
    for i, (variant, s) in enumerate(summary.items()):
        y, x = i * 36 + 4, float(label_w)
        svg.append(f"<text x='0' y='{y + 16}' font-size='12'>{variant}</text>")
        for part, key in keys.items():
            w = (width - label_w - 20) * s[key] / top
            svg.append(
                f"<rect x='{x:.1f}' y='{y}' width='{w:.1f}' height='22' "
                f"fill='{SPLIT_COLOURS[part]}'><title>{part}: {s[key]:.1f} ms</title></rect>"
            )
            x += w
    legend_y = 36 * len(summary) + 22
    for j, (part, colour) in enumerate(SPLIT_COLOURS.items()):
        svg.append(
            f"<rect x='{label_w + j * 140}' y='{legend_y - 9}' width='10' height='10' "
            f"fill='{colour}'/><text x='{label_w + j * 140 + 14}' y='{legend_y}' "
            f"font-size='12'>{part}</text>"
        )
    return "".join(svg) + "</svg>"


def _summary_table(summary: dict[str, dict[str, float]]) -> str:
    head = (
        "<table><tr><th>variant</th><th>sagas</th><th>p50</th><th>p95</th><th>p99</th>"
        "<th>work</th><th>queue wait</th><th>coordination</th><th>spans/saga</th>"
        "<th>messages/saga</th><th>retries</th></tr>"
    )
    body = "".join(
        f"<tr><td>{v}</td><td>{s['sagas']:.0f}</td><td>{_ms(s['p50_ms'])}</td>"
        f"<td>{_ms(s['p95_ms'])}</td><td>{_ms(s['p99_ms'])}</td><td>{s['mean_work_ms']:.1f} ms</td>"
        f"<td>{s['mean_queue_ms']:.1f} ms</td><td>{s['mean_coordination_ms']:.1f} ms</td>"
        f"<td>{s['mean_spans']:.1f}</td><td>{s['mean_messages']:.1f}</td>"
        f"<td>{s['retries']:.0f}</td></tr>"
        for v, s in summary.items()
    )
    return head + body + "</table>"


def _waterfalls(traces: list[SagaTrace]) -> str:
    first: dict[str, dict[str, SagaTrace]] = defaultdict(dict)
    for t in traces:
        first[t.scenario].setdefault(t.variant, t)
    parts = []
    for scenario, by_variant in first.items():
        parts.append(f"<h3>{html.escape(scenario)}</h3><div class='pair'>")
        for variant in VARIANTS:
            saga = by_variant.get(variant)
            parts.append(f"<div><b>{variant}</b>")
            parts.append(_waterfall(saga) if saga else "<p>no trace</p>")
            parts.append("</div>")
        parts.append("</div>")
    return "".join(parts)


def _waterfall(saga: SagaTrace, limit: int = 80) -> str:
    root = saga.root
    span_ns = max(root.end_ns - root.start_ns, 1)
    rows: list[str] = [
        f"<div class='wf'>{root.duration_ms:,.1f} ms, {len(saga.spans)} spans, "
        f"outcome {html.escape(saga.outcome)}"
    ]

    def walk(span: Span, depth: int) -> None:
        if len(rows) > limit:
            return
        left = 100 * (span.start_ns - root.start_ns) / span_ns
        width = 100 * (span.end_ns - span.start_ns) / span_ns
        colour = "#c92a2a" if span.status == 2 else _colour(span)
        title = html.escape(f"{span.name} {span.duration_ms:.2f} ms ({span.service})")
        rows.append(
            f"<div class='row' title='{title}'><div class='label'>{'&nbsp;' * 2 * depth}"
            f"{html.escape(span.name)}</div><div class='lane'><div class='bar' "
            f"style='left:{left:.2f}%;width:{width:.2f}%;background:{colour}'></div></div></div>"
        )
        for child in span.children:
            walk(child, depth + 1)

    walk(root, 0)
    return "".join(rows) + "</div>"


def _colour(span: Span) -> str:
    if span.is_step:
        phase = span.attributes.get("saga.phase")
        return "#e64980" if phase == "compensate" else SPLIT_COLOURS["work"]
    return "#adb5bd" if span.name.startswith("saga ") else "#74c0fc"


def load_results(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
