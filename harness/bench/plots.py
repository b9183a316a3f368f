"""The benchmark's charts as self-contained SVG: sweep curves, closed-run bars, timelines.

- ``sweep_svg``: latency (p50 and p95, from each saga's scheduled start) against the offered
  rate, every style on the same axes, each style's knee marked, the p95 bound drawn;
- ``closed_svg``: throughput and latency percentiles of each closed run (floors and sagas);
- ``timeline_svg``: memory (in all and by process) and p95 latency over an open run (an
  endurance run's drift, and which process grows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import Any

from harness.report.axis import LogAxis, nice_step

COLOURS = ("#4c6ef5", "#e8590c", "#2b8a3e", "#ae3ec9", "#868e96")
WIDTH, HEIGHT = 760, 420
LEFT, RIGHT, TOP, BOTTOM = 70, 180, 30, 50


def _svg(width: float, height: float, body: Sequence[str], title: str) -> str:
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width:.0f}' height='{height:.0f}' "
        f"viewBox='0 0 {width:.0f} {height:.0f}' font-family='sans-serif' font-size='11'>"
        f"<title>{escape(title)}</title><rect width='100%' height='100%' fill='white'/>"
    )
    return head + "".join(body) + "</svg>\n"


def _linear_ticks(top: float, count: int = 6) -> list[float]:
    step = nice_step(max(top, 1e-9) / count)
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _number(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value:,.0f}"


def _frame(plot_w: float, plot_h: float, x_label: str, y_label: str) -> list[str]:
    return [
        f"<rect x='{LEFT}' y='{TOP}' width='{plot_w:.1f}' height='{plot_h:.1f}' "
        "fill='none' stroke='#adb5bd'/>",
        f"<text x='{LEFT + plot_w / 2:.1f}' y='{TOP + plot_h + 38:.1f}' text-anchor='middle' "
        f"class='x-label'>{escape(x_label)}</text>",
        f"<text transform='translate(16 {TOP + plot_h / 2:.1f}) rotate(-90)' "
        f"text-anchor='middle' class='y-label'>{escape(y_label)}</text>",
    ]


def sweep_svg(doc: dict[str, Any]) -> str:
    """Latency against offered rate for every style, knees marked."""
    rows = [m for m in doc["measurements"] if m["load"] == "open" and m["kind"] == "saga"]
    bound = float(doc["plan"]["p95_bound_ms"])
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_rate = max((m["rate"] for m in rows), default=1.0) * 1.05
    smallest = min((m["p50_ms"] for m in rows if m["p50_ms"] > 0), default=1.0)
    largest = max([bound, *(m["p95_ms"] for m in rows)])
    y_axis = LogAxis.covering(smallest, largest, plot_h)
    rate_ticks = _linear_ticks(top_rate)
    top_rate = rate_ticks[-1]

    def x(rate: float) -> float:
        return LEFT + plot_w * rate / top_rate

    def y(ms: float) -> float:
        return TOP + plot_h - y_axis.x(ms)

    body = _frame(plot_w, plot_h, "offered rate (sagas/s)", "latency from scheduled start")
    body += _grid(rate_ticks, x, y_axis, y, plot_w)
    body.append(
        f"<line x1='{LEFT}' x2='{LEFT + plot_w}' y1='{y(bound):.1f}' y2='{y(bound):.1f}' "
        "stroke='#c92a2a' stroke-dasharray='2 3'/>"
        f"<text x='{LEFT + plot_w - 4}' y='{y(bound) - 4:.1f}' text-anchor='end' "
        f"fill='#c92a2a'>p95 bound {bound:g} ms</text>"
    )
    styles = list(dict.fromkeys(m["style"] for m in rows))
    for index, style in enumerate(styles):
        colour = COLOURS[index % len(COLOURS)]
        points = sorted((m for m in rows if m["style"] == style), key=lambda m: m["rate"])
        body += _curve(points, "p95_ms", x, y, colour, dashed=False)
        body += _curve(points, "p50_ms", x, y, colour, dashed=True)
        body += _knee(doc["knees"].get(style, {}), points, x, y, colour)
        body += _legend(index, style, colour, WIDTH - RIGHT + 12)
    body.append(
        f"<text x='{WIDTH - RIGHT + 12}' y='{TOP + 24 * len(styles) + 14}' fill='#495057'>"
        "solid p95, dashed p50</text>"
    )
    return _svg(WIDTH, HEIGHT, body, "latency against offered rate, knees marked")


def _grid(rate_ticks: list[float], x: Any, y_axis: LogAxis, y: Any, plot_w: float) -> list[str]:
    body = []
    bottom = TOP + (HEIGHT - TOP - BOTTOM)
    for rate in rate_ticks:
        body.append(
            f"<line x1='{x(rate):.1f}' x2='{x(rate):.1f}' y1='{TOP}' y2='{bottom}' "
            f"stroke='#f1f3f5'/><text x='{x(rate):.1f}' y='{bottom + 14}' "
            f"text-anchor='middle'>{_number(rate)}</text>"
        )
    for tick in y_axis.ticks():
        at = TOP + (HEIGHT - TOP - BOTTOM) - tick.x
        body.append(
            f"<line x1='{LEFT}' x2='{LEFT + plot_w:.1f}' y1='{at:.1f}' y2='{at:.1f}' "
            f"stroke='#f1f3f5'/><text x='{LEFT - 6}' y='{at + 4:.1f}' "
            f"text-anchor='end'>{tick.label}</text>"
        )
    return body


def _curve(
    points: list[dict[str, Any]], field: str, x: Any, y: Any, colour: str, *, dashed: bool
) -> list[str]:
    if not points:
        return []
    path = " ".join(f"{x(m['rate']):.1f},{y(max(m[field], 1e-3)):.1f}" for m in points)
    dash = " stroke-dasharray='5 4'" if dashed else ""
    dots = "".join(
        f"<circle cx='{x(m['rate']):.1f}' cy='{y(max(m[field], 1e-3)):.1f}' r='2.5' "
        f"fill='{colour}'/>"
        for m in points
    )
    return [
        f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='2'{dash}/>" + dots
    ]


def _knee(
    knee: dict[str, Any], points: list[dict[str, Any]], x: Any, y: Any, colour: str
) -> list[str]:
    rate = knee.get("rate")
    at = next((m for m in points if rate is not None and m["rate"] == rate), None)
    if at is None:
        return []
    label = f"knee {rate:g}/s" + ("" if knee.get("saturated") else " (not reached)")
    cx, cy = x(rate), y(max(at["p95_ms"], 1e-3))
    return [
        f"<circle class='knee' cx='{cx:.1f}' cy='{cy:.1f}' r='7' fill='none' "
        f"stroke='{colour}' stroke-width='2'/>"
        f"<text x='{cx + 9:.1f}' y='{cy - 9:.1f}' fill='{colour}' font-weight='bold'>"
        f"{escape(label)}</text>"
    ]


def _legend(index: int, style: str, colour: str, left: float) -> list[str]:
    top = TOP + 24 * index
    return [
        f"<rect x='{left}' y='{top}' width='14' height='10' fill='{colour}'/>"
        f"<text x='{left + 20}' y='{top + 9}'>{escape(style)}</text>"
    ]


def run_label(m: dict[str, Any]) -> str:
    """How a closed run is named in tables and charts."""
    if m["kind"] != "saga":
        return str(m["kind"])
    return "saga, traced" if m["tracing"] else "saga, untraced"


def closed_svg(doc: dict[str, Any]) -> str:
    """Throughput and p50 / p95 / p99 of every closed run, one row each."""
    rows = [m for m in doc["measurements"] if m["load"] == "closed"]
    width, label_w, row_h = 900, 260, 24
    half = (width - label_w - 60) / 2
    height = row_h * len(rows) + 70
    top_tp = max((m["throughput"] for m in rows), default=1.0) or 1.0
    top_ms = max((m["p99_ms"] for m in rows), default=1.0) or 1.0
    x0 = label_w + half + 40
    body = [
        f"<text x='{label_w}' y='16' font-weight='bold' class='x-label'>"
        "throughput (sagas/s, median of the repeats)</text>",
        f"<text x='{x0}' y='16' font-weight='bold' class='x-label'>"
        "latency p50 / p95 / p99 (ms)</text>",
    ]
    styles = list(dict.fromkeys(m["style"] for m in rows))
    for i, m in enumerate(rows):
        top = 28 + i * row_h
        colour = COLOURS[styles.index(m["style"]) % len(COLOURS)]
        opacity = 1.0 if m["kind"] == "saga" and m["tracing"] else 0.55
        tp_w = half * m["throughput"] / top_tp
        body.append(
            f"<text x='0' y='{top + 13}' class='y-label'>"
            f"{escape(m['style'])} - {escape(run_label(m))}</text>"
            f"<rect x='{label_w}' y='{top}' width='{tp_w:.1f}' height='16' fill='{colour}' "
            f"fill-opacity='{opacity}'/><text x='{label_w + tp_w + 3:.1f}' y='{top + 12}'>"
            f"{m['throughput']:.1f}</text>"
        )
        for field, shade in (("p99_ms", 0.3), ("p95_ms", 0.55), ("p50_ms", 1.0)):
            bar = (half - 120) * m[field] / top_ms
            body.append(
                f"<rect x='{x0}' y='{top}' width='{bar:.1f}' height='16' fill='{colour}' "
                f"fill-opacity='{shade * opacity:.2f}'/>"
            )
        body.append(
            f"<text x='{x0 + (half - 120) * m['p99_ms'] / top_ms + 3:.1f}' y='{top + 12}'>"
            f"{m['p50_ms']:.0f} / {m['p95_ms']:.0f} / {m['p99_ms']:.0f}</text>"
        )
    return _svg(width, height, body, "closed runs: throughput and latency")


DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2")
"""Each process kind's line pattern in the by-process memory panel (colour is the style)."""
MAX_DOTS = 120
"""A series with more points than this is drawn as a line without a dot per point."""


def timeline_svg(doc: dict[str, Any]) -> str:
    """Memory (in all and by process) and p95 latency over the longest open run of each style:
    drift over time, and which process grows."""
    runs = _longest_open_runs(doc)
    panel_h = 170
    height = TOP + 3 * panel_h + 3 * BOTTOM
    plot_w = WIDTH - LEFT - RIGHT
    end = max((_last_time(m) for m in runs.values()), default=1.0) or 1.0
    time_ticks = _linear_ticks(end)
    end = time_ticks[-1]
    body: list[str] = []
    panels = (
        (("memory",), 1, "resident memory (MB, all processes)", 0),
        (_process_series(runs), 1, "resident memory by process (MB)", 1),
        (("latency",), 2, "p95 latency of the sagas due in each window (ms)", 2),
    )
    for names, column, label, row in panels:
        top = TOP + row * (panel_h + BOTTOM)
        values = [p[column] for m in runs.values() for n in names for p in m["timeline"].get(n, [])]
        value_ticks = _linear_ticks(max(values, default=1.0) or 1.0, 4)
        body += _panel(top, panel_h, plot_w, time_ticks, value_ticks, label)
        for index, (style, m) in enumerate(runs.items()):
            colour = COLOURS[index % len(COLOURS)]
            for number, name in enumerate(names):
                points = [(p[0], p[column]) for p in m["timeline"].get(name, [])]
                dash = DASHES[number % len(DASHES)]
                body += _line(points, top, panel_h, plot_w, end, value_ticks[-1], colour, dash)
                if row == 1 and points:
                    body += _end_label(points[-1], name.split(":", 1)[1], top, panel_h, plot_w,
                                       end, value_ticks[-1], colour)  # fmt: skip
            if row == 0:
                body += _legend(index, style, colour, WIDTH - RIGHT + 12)
    return _svg(WIDTH, height, body, "memory and latency over the open runs")


def _process_series(runs: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """The ``memory:<name>`` series any of the runs has: the process kinds in the reports'
    order, then a deployment's own processes (``payment``, ``tracker`` ...) by name."""
    order = ("harness", "services", "worker", "broker", "server", "database", "exporter", "other")
    found = {name for m in runs.values() for name in m["timeline"] if name.startswith("memory:")}
    known = [f"memory:{kind}" for kind in order if f"memory:{kind}" in found]
    return (*known, *sorted(found - set(known)))


def _end_label(
    point: tuple[float, float],
    text: str,
    top: float,
    height: float,
    width: float,
    end: float,
    ceiling: float,
    colour: str,
) -> list[str]:
    t, v = point
    x = LEFT + width * t / end + 4
    y = top + height - height * v / ceiling + 4
    return [f"<text x='{x:.1f}' y='{y:.1f}' fill='{colour}'>{escape(text)}</text>"]


def _longest_open_runs(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    longest: dict[str, dict[str, Any]] = {}
    for m in doc["runs"]:
        if m["load"] != "open" or m["kind"] != "saga":
            continue
        best = longest.get(m["style"])
        if best is None or (m["wall_s"], m["rate"]) >= (best["wall_s"], best["rate"]):
            longest[m["style"]] = m
    return longest


def _last_time(m: dict[str, Any]) -> float:
    return max((p[0] for s in m["timeline"].values() for p in s), default=0.0)


def _panel(
    top: float, height: float, width: float, xs: list[float], ys: list[float], label: str
) -> list[str]:
    body = [
        f"<rect x='{LEFT}' y='{top}' width='{width:.1f}' height='{height}' fill='none' "
        "stroke='#adb5bd'/>",
        f"<text x='{LEFT}' y='{top - 6}' class='y-label'>{escape(label)}</text>",
        f"<text x='{LEFT + width / 2:.1f}' y='{top + height + 34}' text-anchor='middle' "
        "class='x-label'>seconds since the run started</text>",
    ]
    for value in xs:
        at = LEFT + width * value / xs[-1]
        body.append(
            f"<text x='{at:.1f}' y='{top + height + 14}' text-anchor='middle'>"
            f"{_number(value)}</text>"
        )
    for value in ys:
        at = top + height - height * value / ys[-1]
        body.append(
            f"<line x1='{LEFT}' x2='{LEFT + width:.1f}' y1='{at:.1f}' y2='{at:.1f}' "
            f"stroke='#f1f3f5'/><text x='{LEFT - 6}' y='{at + 4:.1f}' text-anchor='end'>"
            f"{_number(value)}</text>"
        )
    return body


def _line(
    points: list[tuple[float, float]],
    top: float,
    height: float,
    width: float,
    end: float,
    ceiling: float,
    colour: str,
    dash: str = "",
) -> list[str]:
    if not points:
        return []
    path = " ".join(
        f"{LEFT + width * t / end:.1f},{top + height - height * v / ceiling:.1f}" for t, v in points
    )
    dots = "".join(
        f"<circle cx='{LEFT + width * t / end:.1f}' cy='{top + height - height * v / ceiling:.1f}' "
        f"r='2' fill='{colour}'/>"
        for t, v in points
    )
    pattern = f" stroke-dasharray='{dash}'" if dash else ""
    line = f"<polyline points='{path}' fill='none' stroke='{colour}' stroke-width='1.5'{pattern}/>"
    return [line + (dots if len(points) <= MAX_DOTS else "")]
