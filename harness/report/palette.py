"""One palette for the report, the review page and the diagrams: every colour named once.

The two styles, the step phases, waiting and the markers each get a colour of their own
(retry, waiting and the choreography used to be three oranges).
"""

from __future__ import annotations

PALETTE: dict[str, str] = {
    "orchestration": "#1c7ed6",
    "choreography": "#d6336c",
    "forward": "#2f9e44",
    "compensate": "#9c36b5",
    "retry": "#1098ad",
    "failed": "#e03131",
    "wait": "#fd7e14",
    "wait-light": "#fff4e6",
    "coordination": "#868e96",
    "saga": "#ced4da",
    "handler": "#e9ecef",
    "handler-edge": "#868e96",
    "send": "#343a40",
    "fault": "#f59f00",
    "cancel": "#c92a2a",
    "deadline": "#343a40",
    "completed": "#b2f2bb",
    "compensated": "#eebefa",
    "needs-intervention": "#ffc9c9",
    "compensate-light": "#f3d9fa",
    "forward-light": "#d3f9d8",
    "late-light": "#f1f3f5",
    "ink": "#212529",
    "muted": "#495057",
    "rule": "#dee2e6",
}


def css_variables() -> str:
    """The palette as CSS custom properties (``--forward: #2f9e44;`` ...) for ``:root``."""
    return " ".join(f"--{name}: {colour};" for name, colour in PALETTE.items())


def rgb(name: str) -> str:
    """A palette colour as Mermaid's ``rgb(r, g, b)`` (what a ``rect`` block takes)."""
    value = PALETTE[name].lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgb({r}, {g}, {b})"


def named_rgb(text: str) -> str | None:
    """The palette name of an ``rgb(r, g, b)`` colour, if it is one of ours."""
    return next((name for name in PALETTE if rgb(name) == text.strip()), None)
