"""Shared pieces of the SVG drawers: text width, escaping, wrapping, the diagrams' style sheet."""

from __future__ import annotations

import textwrap
from xml.sax.saxutils import escape, quoteattr

from harness.report.palette import PALETTE

FONT_PX = 11
CHAR_PX = 6.6
"""An average character of an 11 px sans-serif (DejaVu Sans is among the widest): estimates err
on the wide side, so text fits the boxes drawn for it."""


def text_px(text: str, size: float = FONT_PX) -> float:
    return len(text) * CHAR_PX * size / FONT_PX


def wrap(text: str, width_px: float) -> list[str]:
    """Lines of ``text`` that each fit ``width_px``."""
    chars = max(int(width_px / CHAR_PX), 8)
    return textwrap.wrap(text, chars, break_on_hyphens=False) or [""]


def fit(text: str, width_px: float) -> str:
    """``text`` cut with an ellipsis to fit ``width_px`` (its full form goes in a title)."""
    chars = max(int(width_px / CHAR_PX), 4)
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


def esc(text: str) -> str:
    return escape(text)


def attr(text: str) -> str:
    return quoteattr(text)


def num(value: float) -> str:
    """A coordinate with at most one decimal, no trailing zeros (stable text for diffs)."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def el(tag: str, body: str = "", **attributes: object) -> str:
    """One SVG element; ``class_`` stands for ``class``, ``data_x`` for ``data-x``, numbers are
    written with `num`, and an element without a body closes itself."""
    parts = [tag]
    for key, value in attributes.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        text = num(value) if isinstance(value, (int, float)) else str(value)
        parts.append(f"{name}={attr(text)}")
    opening = " ".join(parts)
    return f"<{opening}>{body}</{tag}>" if body else f"<{opening}/>"


def _rules(p: dict[str, str]) -> list[tuple[str, str]]:
    """(selector, declarations) of the diagrams' CSS."""
    return [
        (
            "svg.seq text, svg.states text",
            f"font: {FONT_PX}px 'DejaVu Sans', system-ui, sans-serif; fill: {p['ink']}",
        ),
        ("svg.seq .actor rect", f"fill: {p['late-light']}; stroke: {p['coordination']}"),
        ("svg.seq .actor text, svg.states .state text", "text-anchor: middle"),
        ("svg.seq .life", "stroke: #adb5bd; stroke-dasharray: 3 3"),
        ("svg.seq .msg line, svg.seq .msg path", f"stroke: {p['send']}; fill: none"),
        ("svg.seq .msg .head", f"fill: {p['send']}; stroke: none"),
        ("svg.seq .msg.open .head", f"fill: none; stroke: {p['send']}"),
        ("svg.seq .msg.reply line", f"stroke-dasharray: 4 3; stroke: {p['coordination']}"),
        ("svg.seq .msg.fail line, svg.seq .msg.fail path", f"stroke: {p['failed']}"),
        ("svg.seq .msg text", "paint-order: stroke; stroke: #fff; stroke-width: 3px"),
        ("svg.seq .note rect", f"fill: #f8f9fa; stroke: {p['coordination']}"),
        ("svg.seq .note.forward rect", f"fill: {p['forward-light']}; stroke: {p['forward']}"),
        (
            "svg.seq .note.compensate rect",
            f"fill: {p['compensate-light']}; stroke: {p['compensate']}",
        ),
        (
            "svg.seq .note.noop rect",
            f"fill: #fff; stroke: {p['compensate']}; stroke-dasharray: 3 2",
        ),
        ("svg.seq .note.retry rect", f"fill: #e3fafc; stroke: {p['retry']}"),
        ("svg.seq .note.failed rect", f"fill: #ffe3e3; stroke: {p['failed']}"),
        (
            "svg.seq .note.abandoned rect",
            f"fill: #fff; stroke: {p['failed']}; stroke-dasharray: 4 2",
        ),
        ("svg.seq .note.fault rect", f"fill: #fff3bf; stroke: {p['fault']}"),
        ("svg.seq .note.cancel rect", f"fill: #fff5f5; stroke: {p['cancel']}; stroke-width: 1.5"),
        (
            "svg.seq .note.deadline rect",
            f"fill: #f1f3f5; stroke: {p['deadline']}; stroke-width: 1.5",
        ),
        ("svg.seq .note.outcome rect", f"fill: #fff; stroke: {p['ink']}; stroke-width: 1.5"),
        (
            "svg.seq .note.skipped rect",
            f"fill: #fff; stroke: {p['coordination']}; stroke-dasharray: 2 2",
        ),
        ("svg.seq .frame", f"fill: none; stroke: {p['coordination']}"),
        ("svg.seq .frame-tab", f"fill: {p['late-light']}; stroke: {p['coordination']}"),
        ("svg.seq .branch", f"stroke: {p['coordination']}; stroke-dasharray: 4 3"),
        ("svg.seq .frame-title", f"fill: {p['muted']}"),
        ("svg.states .state rect", f"fill: #f8f9fa; stroke: {p['coordination']}"),
        ("svg.states .state.forward rect", f"fill: {p['forward-light']}; stroke: {p['forward']}"),
        (
            "svg.states .state.pivot rect",
            f"fill: {p['forward-light']}; stroke: {p['forward']}; stroke-width: 2.5",
        ),
        (
            "svg.states .state.compensation rect",
            f"fill: {p['compensate-light']}; stroke: {p['compensate']}",
        ),
        ("svg.states .state.ok rect", f"fill: {p['completed']}; stroke: {p['forward']}"),
        ("svg.states .state.undone rect", f"fill: {p['compensated']}; stroke: {p['compensate']}"),
        (
            "svg.states .state.operator rect",
            f"fill: {p['needs-intervention']}; stroke: {p['failed']}",
        ),
        ("svg.states .start", f"fill: {p['ink']}"),
        ("svg.states .edge", f"stroke: {p['muted']}; fill: none"),
        ("svg.states .edge.fail", f"stroke: {p['failed']}"),
        ("svg.states .edge.back", f"stroke: {p['compensate']}"),
        ("svg.states .head", f"fill: {p['muted']}"),
        ("svg.states .head.fail", f"fill: {p['failed']}"),
        ("svg.states .head.back", f"fill: {p['compensate']}"),
        (
            "svg.states .edge-label",
            "paint-order: stroke; stroke: #fff; stroke-width: 3px; text-anchor: middle",
        ),
        ("svg.states .state-note", f"fill: {p['muted']}"),
    ]


def style_sheet() -> str:
    """The diagrams' CSS, scoped to ``svg.seq`` and ``svg.states``, colours from the palette."""
    return "".join(f"{selector} {{ {rules}; }}\n" for selector, rules in _rules(PALETTE))


def open_svg(css: str, width: float, height: float, title: str, *, standalone: bool) -> str:
    """The ``<svg>`` element's opening, with its title (and, standalone, its style sheet)."""
    head = (
        f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" width="{num(width)}"'
        f' height="{num(height)}" viewBox="0 0 {num(width)} {num(height)}" role="img"'
        f" aria-label={attr(title)}>"
    )
    parts = [head, f"<title>{esc(title)}</title>"]
    if standalone:
        parts.append(
            f'<rect width="100%" height="100%" fill="#fff"/><style>\n{style_sheet()}</style>'
        )
    return "".join(parts)
