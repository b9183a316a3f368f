"""The chaos chart: completions per second per variant, the kills marked on the same time axis.

One panel per variant, one shared scale: a bar per second of the run for the sagas observed
ending in it, a red line at each kill, and the process's downtime (until it was ready again)
shaded. A self-contained SVG, no script.
"""

from __future__ import annotations

from html import escape

from harness.chaos.analysis import VariantReport

WIDTH = 900
PANEL_H = 150
LEFT = 60
TOP = 52
COLOURS = {"choreography": "#2f9e44", "orchestration": "#4c6ef5"}


def chaos_svg(reports: list[VariantReport], title: str) -> str:
    seconds = max((len(r.completions_per_s) for r in reports), default=1) or 1
    seconds = max(seconds, *(int((k.back_s or 0) + 1) for r in reports for k in r.kills), 1)
    peak = max((max(r.completions_per_s, default=0) for r in reports), default=1) or 1
    height = TOP + len(reports) * (PANEL_H + 40) + 20
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        "font-family='sans-serif' font-size='11'>",
        f"<text x='{LEFT}' y='16' font-weight='bold'>{escape(title)}</text>",
    ]
    for row, report in enumerate(reports):
        parts += _panel(report, TOP + row * (PANEL_H + 40), seconds, peak)
    parts.append("</svg>")
    return "".join(parts)


def _panel(report: VariantReport, top: int, seconds: int, peak: int) -> list[str]:
    plot_w = WIDTH - LEFT - 20
    step = plot_w / seconds
    base = top + PANEL_H
    colour = COLOURS.get(report.variant, "#495057")
    parts = [
        f"<text x='{LEFT}' y='{top - 4}' font-weight='bold'>{escape(report.variant)}</text>",
        f"<line x1='{LEFT}' y1='{base}' x2='{LEFT + plot_w}' y2='{base}' stroke='#868e96'/>",
        f"<line x1='{LEFT}' y1='{top}' x2='{LEFT}' y2='{base}' stroke='#868e96'/>",
        f"<text x='{LEFT - 6}' y='{top + 10}' text-anchor='end'>{peak}</text>",
        f"<text x='{LEFT - 6}' y='{base}' text-anchor='end'>0</text>",
        f"<text x='14' y='{top + PANEL_H / 2}' transform='rotate(-90 14 {top + PANEL_H / 2})' "
        "text-anchor='middle'>sagas ended / s</text>",
    ]
    for row, kill in enumerate(report.kills):
        if kill.at_s is None:
            continue
        x = LEFT + kill.at_s * step
        back = kill.back_s if kill.back_s is not None else seconds
        parts.append(
            f"<rect x='{x:.1f}' y='{top}' width='{max(1.0, (back - kill.at_s) * step):.1f}' "
            f"height='{PANEL_H}' fill='#fa5252' fill-opacity='0.12'/>"
            f"<line x1='{x:.1f}' y1='{top}' x2='{x:.1f}' y2='{base}' stroke='#e03131'/>"
            f"<text x='{x + 2:.1f}' y='{top + 10 + 12 * row}' fill='#c92a2a'>"
            f"{escape(_named(kill.kind, kill.target))}"
            "</text>"
        )
    for second, count in enumerate(report.completions_per_s):
        h = PANEL_H * count / peak
        parts.append(
            f"<rect x='{LEFT + second * step:.1f}' y='{base - h:.1f}' "
            f"width='{max(1.0, step - 1):.1f}' height='{h:.1f}' fill='{colour}'/>"
        )
    for tick in range(0, seconds + 1, max(1, seconds // 10)):
        x = LEFT + tick * step
        parts.append(f"<text x='{x:.1f}' y='{base + 14}' text-anchor='middle'>{tick}s</text>")
    return parts


def _named(kind: str, target: str) -> str:
    """``kill payment``, or ``kill payment (worker)`` where that code runs in another process."""
    return f"kill {kind}" if kind == target else f"kill {kind} ({target})"
