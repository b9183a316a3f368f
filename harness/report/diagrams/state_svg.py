"""The saga's state diagram drawn as SVG: a ladder read off the states' classes.

A saga's states have a fixed shape, so the layout is a rule rather than a graph search:
``forward`` and ``pivot`` states run left to right on the top row, in the order declared; the
k-th ``compensation`` state sits under the k-th forward state (the one it undoes), so undoing
runs right to left underneath; ``ok`` ends the top row, ``undone`` starts the bottom row on the
left, ``operator`` is a bar under everything; ``[*]`` starts the top row. A transition is a
straight line between two boxes (down into the bar from where it starts), labelled midway.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.diagrams.model import START, State, StateDiagram, Transition
from harness.report.diagrams.svg import el, esc, num, open_svg, text_px, wrap

MARGIN = 8.0
BOX_W = 132.0
BOX_H = 38.0
GAP = 124.0
ROWS = (34.0, 190.0, 320.0)
"""The top of each row: forward, compensation, the operator's bar."""
FORWARD = ("forward", "pivot")


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def cx(self) -> float:
        return self.x + self.w / 2

    @property
    def cy(self) -> float:
        return self.y + self.h / 2


def layout(diagram: StateDiagram) -> dict[str, Box]:
    """Each state's box, and the start dot's, by the ladder rule."""
    forward = [s for s in diagram.states if s.css in FORWARD]
    undoing = [s for s in diagram.states if s.css == "compensation"]
    step = BOX_W + GAP

    def column(index: float, row: int) -> Box:
        return Box(MARGIN + (index + 1) * step, ROWS[row], BOX_W, BOX_H)

    boxes = {START: Box(MARGIN + step - GAP / 2 - 8, ROWS[0] + BOX_H / 2 - 8, 16, 16)}
    for index, state in enumerate(forward):
        boxes[state.key] = column(index, 0)
    for index, state in enumerate(undoing):
        boxes[state.key] = column(index, 1)
    others = [s for s in diagram.states if s.key not in boxes]
    right = MARGIN + (len(forward) + 1) * step + BOX_W
    for state in others:
        if state.css == "ok":
            boxes[state.key] = column(len(forward), 0)
        elif state.css == "undone":
            boxes[state.key] = column(-1, 1)
        else:  # the operator's bar, and anything unclassed, under everything
            boxes[state.key] = Box(MARGIN, ROWS[2], right - MARGIN, BOX_H - 6)
    return boxes


def state_svg(diagram: StateDiagram, *, standalone: bool = False) -> str:
    """The diagram as one ``<svg class="states">`` (standalone: with a background and styles)."""
    boxes = layout(diagram)
    width = max(b.x + b.w for b in boxes.values()) + MARGIN
    notes = [f"{n.state}: {n.text}" for n in diagram.notes]
    lines = [line for note in notes for line in wrap(note, width - 2 * MARGIN)]
    height = ROWS[2] + BOX_H + 16 + 15 * len(lines)
    out = [open_svg("states", width, height, diagram.title, standalone=standalone)]
    out += [_edge(t, boxes) for t in diagram.transitions]
    out += [_state(s, boxes[s.key]) for s in diagram.states]
    start = boxes[START]
    out.append(el("circle", class_="start", cx=start.cx, cy=start.cy, r=7))
    top = ROWS[2] + BOX_H + 14
    out += [
        el("text", esc(line), class_="state-note", x=MARGIN, y=top + i * 15)
        for i, line in enumerate(lines)
    ]
    return "".join([*out, "</svg>"]) + "\n"


def _state(state: State, box: Box) -> str:
    name, paren, rest = state.label.partition(" (")
    lines = wrap(name, box.w - 10) + ([f"({rest}"] if paren else [])
    first = box.cy + 4 - 7 * (len(lines) - 1)
    texts = "".join(
        el("text", esc(line), x=box.cx, y=first + 14 * i) for i, line in enumerate(lines)
    )
    css = " ".join(filter(None, ("state", state.css)))
    rect = el("rect", x=box.x, y=box.y, width=box.w, height=box.h, rx=8)
    return el("g", rect + texts, class_=css, data_state=state.key)


def _edge(t: Transition, boxes: dict[str, Box]) -> str:
    a, b = boxes[t.src], boxes[t.dst]
    x1, y1, x2, y2 = _ends(a, b)
    css = "fail" if ("fail" in t.label or t.dst not in boxes or b.y >= ROWS[2]) else ""
    if not css and a.y >= ROWS[1] and b.y >= ROWS[1]:
        css = "back"
    label = ""
    if t.label:
        lx, ly = (x1 + x2) / 2, (y1 + y2) / 2 - (6 if y1 == y2 else 0)
        if x1 == x2:  # a vertical line: the label beside it
            lx, ly = x1 + 6 + text_px(t.label) / 2, (y1 + y2) / 2 + 4
        label = el("text", esc(t.label), class_="edge-label", x=lx, y=ly)
    line = el("line", class_=" ".join(filter(None, ("edge", css))), x1=x1, y1=y1, x2=x2, y2=y2)
    head = el("polygon", class_=" ".join(filter(None, ("head", css))), points=_head(x1, y1, x2, y2))
    return el("g", line + head + label, class_="transition", data_from=t.src, data_to=t.dst)


def _ends(a: Box, b: Box) -> tuple[float, float, float, float]:
    """Where a line from box ``a`` to box ``b`` leaves and arrives."""
    if b.w > 2 * BOX_W:  # the bar under everything: straight down into it
        return a.cx, a.y + a.h, a.cx, b.y
    if abs(a.cy - b.cy) < 1:
        if b.cx > a.cx:
            return a.x + a.w, a.cy, b.x, b.cy
        return a.x, a.cy, b.x + b.w, b.cy
    down = b.cy > a.cy
    return a.cx, (a.y + a.h if down else a.y), b.cx, (b.y if down else b.y + b.h)


def _head(x1: float, y1: float, x2: float, y2: float) -> str:
    length = max(((x2 - x1) ** 2 + (y2 - y1) ** 2) ** 0.5, 1.0)
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    bx, by = x2 - 9 * ux, y2 - 9 * uy
    left = f"{num(bx - 4 * uy)},{num(by + 4 * ux)}"
    right = f"{num(bx + 4 * uy)},{num(by - 4 * ux)}"
    return f"{num(x2)},{num(y2)} {left} {right}"
