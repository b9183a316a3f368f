"""A sequence diagram drawn as SVG: participants across, time down, one row per item.

Messages are arrows with their label above (a label wider than its arrow runs on past it, on a
white halo, and never leaves the drawing); notes are boxes over one or two lifelines, coloured
by the word before their first colon (``done:``, ``undone:``, ``failed:``, ``fault:``,
``cancel:``, ``deadline:`` ... see `NOTE_CLASSES`); blocks are frames with a title tab, and a
``rect`` block is a band in one of the palette's colours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report.diagrams.model import Block, Item, Message, Note, Sequence
from harness.report.diagrams.svg import el, esc, fit, num, open_svg, text_px, wrap
from harness.report.palette import PALETTE, named_rgb

MARGIN = 6.0
TOP = 6.0
BOX_H = 24.0
MIN_GAP = 76.0
MESSAGE_ROW = 24.0
LINE = 14.0
BLOCK_HEAD = 20.0
NOTE_CLASSES = {
    "done": "forward",
    "ran": "forward",
    "undone": "compensate",
    "no-op": "noop",
    "retry": "retry",
    "failed": "failed",
    "error": "failed",
    "rejected": "failed",
    "abandoned": "abandoned",
    "hung": "abandoned",
    "fault": "fault",
    "cancel": "cancel",
    "deadline": "deadline",
    "outcome": "outcome",
    "skipped": "skipped",
}
"""The word before a note's first colon, and the class (colour) it gives the note."""


def note_class(text: str) -> str:
    word = text.split(":", 1)[0].strip().lower() if ":" in text else ""
    return NOTE_CLASSES.get(word, "")


@dataclass
class _Canvas:
    """Where the drawing goes: the columns' centres, the width, elements, the cursor."""

    centres: dict[str, float]
    width: float
    y: float
    out: list[str] = field(default_factory=list)

    def span(self, keys: tuple[str, ...]) -> tuple[float, float]:
        xs = [self.centres[k] for k in keys]
        return min(xs), max(xs)

    def clamp(self, centre: float, width: float) -> float:
        """The centre that keeps a box of ``width`` inside the drawing."""
        half = min(width, self.width - 2 * MARGIN) / 2
        return min(max(centre, MARGIN + half), self.width - MARGIN - half)


def sequence_svg(diagram: Sequence, *, standalone: bool = False) -> str:
    """The diagram as one ``<svg class="seq">`` (standalone: with a background and styles)."""
    widths = [max(text_px(p.label) + 16, 60.0) for p in diagram.participants]
    centres: dict[str, float] = {}
    x = MARGIN
    for index, (p, w) in enumerate(zip(diagram.participants, widths, strict=True)):
        if index == 0:
            x += w / 2
        else:
            x += max(MIN_GAP, (widths[index - 1] + w) / 2 + 10)
        centres[p.key] = x
    width = x + (widths[-1] / 2 if widths else 0) + MARGIN
    canvas = _Canvas(centres, max(width, 200.0), TOP + BOX_H + 10)
    _items(canvas, diagram.items, 0)
    height = canvas.y + 8
    head = [open_svg("seq", canvas.width, height, diagram.title, standalone=standalone)]
    head += _actors(diagram, widths, centres, height)
    return "".join([*head, *canvas.out, "</svg>"]) + "\n"


def _actors(
    diagram: Sequence, widths: list[float], centres: dict[str, float], height: float
) -> list[str]:
    out = []
    for p, w in zip(diagram.participants, widths, strict=True):
        cx = centres[p.key]
        life = el("line", class_="life", x1=cx, x2=cx, y1=TOP + BOX_H, y2=height - 4)
        box = el("rect", x=cx - w / 2, y=TOP, width=w, height=BOX_H, rx=3)
        label = el("text", esc(p.label), x=cx, y=TOP + 16)
        out.append(el("g", life + box + label, class_="actor", data_key=p.key))
    return out


def _items(canvas: _Canvas, items: tuple[Item, ...], depth: int) -> None:
    for item in items:
        if isinstance(item, Message):
            _message(canvas, item)
        elif isinstance(item, Note):
            _note(canvas, item, depth)
        else:
            _block(canvas, item, depth)


def _message(canvas: _Canvas, m: Message) -> None:
    x1, x2 = canvas.centres[m.src], canvas.centres[m.dst]
    y = canvas.y + 17
    kind = ["msg"]
    if m.arrow.startswith("--"):
        kind.append("reply")
    if m.arrow.endswith("x"):
        kind.append("fail")
    if m.arrow.endswith(")"):
        kind.append("open")
    label = fit(m.text, canvas.width - 2 * MARGIN)
    if x1 == x2:  # to itself: a loop on the right of the lifeline
        line = el("path", d=f"M{num(x1)} {num(y - 6)} h18 v10 h-16")
        head = _head(x1 + 2, y + 4, -1, m.arrow)
        tx = canvas.clamp(x1 + 24 + text_px(label) / 2, text_px(label))
        ty = y - 9
    else:
        direction = 1 if x2 > x1 else -1
        line = el("line", x1=x1, x2=x2 - direction * 2, y1=y, y2=y)
        head = _head(x2, y, direction, m.arrow)
        tx = canvas.clamp((x1 + x2) / 2, text_px(label))
        ty = y - 5
    text = el("text", esc(label), x=tx, y=ty, text_anchor="middle")
    body = f"<title>{esc(m.text)}</title>{line}{head}{text}"
    canvas.out.append(el("g", body, class_=" ".join(kind)))
    canvas.y += MESSAGE_ROW


def _head(x: float, y: float, direction: int, arrow: str) -> str:
    """The arrow's end: a filled or open head, or a cross for a failed call."""
    if arrow.endswith("x"):
        a, b = f"{num(x - 4)} {num(y - 4)}", f"{num(x + 4)} {num(y + 4)}"
        c, d = f"{num(x - 4)} {num(y + 4)}", f"{num(x + 4)} {num(y - 4)}"
        return el("path", class_="cross", d=f"M{a} L{b} M{c} L{d}")
    back = x - direction * 8
    tip, upper, lower = (
        f"{num(x)},{num(y)}",
        f"{num(back)},{num(y - 4)}",
        f"{num(back)},{num(y + 4)}",
    )
    if arrow.endswith(")"):
        return el("polyline", class_="head", points=f"{upper} {tip} {lower}")
    return el("polygon", class_="head", points=f"{tip} {upper} {lower}")


def _note(canvas: _Canvas, note: Note, depth: int) -> None:
    left, right = canvas.span(note.over)
    spread = right - left
    room = canvas.width - 2 * MARGIN
    lines = wrap(note.text, min(room, max(spread + 120, 320.0)) - 12)
    width = min(room, max(max(text_px(line) for line in lines) + 12, spread + 40 if spread else 0))
    centre = canvas.clamp((left + right) / 2, width)
    height = 6 + LINE * len(lines)
    y = canvas.y + 2
    css = " ".join(filter(None, ("note", note_class(note.text))))
    box = el("rect", x=centre - width / 2, y=y, width=width, height=height, rx=2)
    texts = "".join(
        el("text", esc(line), x=centre, y=y + 14 + i * LINE, text_anchor="middle")
        for i, line in enumerate(lines)
    )
    canvas.out.append(el("g", box + texts, class_=css))
    canvas.y += height + 6


def _block(canvas: _Canvas, block: Block, depth: int) -> None:
    inset = MARGIN + 2 * depth
    left, right = inset, canvas.width - inset
    top = canvas.y + 2
    at = len(canvas.out)
    if block.kind == "rect":
        canvas.y += 6
        _items(canvas, block.items, depth + 1)
        colour = named_rgb(block.label)
        fill = PALETTE[colour] if colour else block.label
        height = canvas.y - top + 2
        band = el("rect", class_="band", x=left, y=top, width=right - left, height=height)
        canvas.out.insert(at, band.replace("/>", f' fill="{fill}" rx="3"/>'))
        canvas.y += 6
        return
    canvas.y += BLOCK_HEAD + 2
    _items(canvas, block.items, depth + 1)
    separators = []
    for label, items in block.branches:
        y = canvas.y
        separators.append(el("line", class_="branch", x1=left, x2=right, y1=y, y2=y))
        separators.append(el("text", f"[{esc(label)}]", class_="frame-title", x=left + 8, y=y + 13))
        canvas.y += BLOCK_HEAD
        _items(canvas, items, depth + 1)
    bottom = canvas.y + 4
    tab = text_px(block.kind) + 12
    title = fit(f"[{block.label}]", right - left - tab - 16) if block.label else ""
    frame = el("rect", class_="frame", x=left, y=top, width=right - left, height=bottom - top)
    tab_path = f"M{num(left)} {num(top)} h{num(tab)} v12 l-6 6 h{num(-tab + 6)} z"
    heading = el("text", esc(block.kind), x=left + 5, y=top + 13)
    heading += el("text", esc(title), class_="frame-title", x=left + tab + 8, y=top + 13)
    opening = f'<g class="block {block.kind}">{frame}{el("path", class_="frame-tab", d=tab_path)}'
    canvas.out.insert(at, opening + heading)
    canvas.out.append("".join(separators) + "</g>")
    canvas.y = bottom + 6
