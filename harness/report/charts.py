"""Chart geometry for the report: swimlanes per service, strips per saga, a latency overview.

Everything is computed here in pixels, so the template only draws and the tests can check
the layout without a browser. A bar never leaves its lane: what runs past the saga's outcome is
clipped at the outcome line and its length written in the lane's note column instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from harness.report.axis import LinearAxis, LogAxis, Tick, ms_label
from harness.report.flow import Marker
from harness.report.lanes import lane_of, lane_rank, span_class
from harness.report.stats import Spread
from harness.report.traces import SagaTrace, is_step, queue_waits

LABEL_WIDTH = 180
PLOT_WIDTH = 640
NOTE_WIDTH = 200
CHART_WIDTH = LABEL_WIDTH + PLOT_WIDTH + NOTE_WIDTH
AXIS_HEIGHT = 42
LANE_PAD = 3
MIN_BAR = 2.0
MARKER_BAND = 14.0
"""Room above the lanes for the cancel's and the deadline's labels."""
LINE_MARKERS = ("cancel", "deadline")
VARIANT_CLASS = {"orchestration": "o", "choreography": "c"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    css: str
    title: str


@dataclass(frozen=True)
class Lane:
    name: str
    y: float
    h: float
    bars: tuple[Bar, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChartMarker:
    """A moment on a chart: a line across the lanes (cancel, deadline) with a label above
    them, or a small triangle on one lane (an injected fault); ``title`` says what it is."""

    x: float
    y0: float
    y1: float
    label: str
    css: str
    title: str


@dataclass(frozen=True)
class Chart:
    """One SVG: lanes top to bottom, a time axis below them, notes on the right."""

    kind: str
    caption: str
    lanes: tuple[Lane, ...]
    ticks: tuple[Tick, ...]
    axis_title: str
    note_title: str
    row: float
    outcome_x: float | None = None
    markers: tuple[ChartMarker, ...] = ()
    zoom: bool = False
    """A style's own time scale, drawn beside the shared one (the styles differ by > 4x)."""

    width = CHART_WIDTH
    plot_x = LABEL_WIDTH
    plot_width = PLOT_WIDTH
    note_x = LABEL_WIDTH + PLOT_WIDTH + 8

    @property
    def plot_height(self) -> float:
        return self.lanes[-1].y + self.lanes[-1].h if self.lanes else 0.0

    @property
    def height(self) -> float:
        return self.plot_height + AXIS_HEIGHT


class Item(NamedTuple):
    """Something to draw in a lane, in ms since the chart's zero."""

    start: float
    end: float
    css: str
    title: str


def shared_axis(longest_ms: float) -> LinearAxis:
    """One axis for both styles of a scenario: the longer one sets the scale."""
    return LinearAxis.covering(longest_ms, PLOT_WIDTH)


def swimlanes(
    saga: SagaTrace,
    axis: LinearAxis,
    caption: str,
    markers: Sequence[Marker] = (),
    *,
    zoom: bool = False,
) -> Chart:
    """One lane per service or process; time runs right from the saga's start. ``markers``
    (the cancel, the deadline, injected faults) are drawn where they fall on the axis."""
    outcome = saga.root.duration_ms
    by_lane = _lane_items(saga)
    shown = [m for m in markers if m.kind != "outcome" and m.at_ms <= axis.top]
    band = MARKER_BAND if any(m.kind in LINE_MARKERS for m in shown) else 0.0
    lanes, y, row = [], band, 7.0
    for name in sorted(by_lane, key=lane_rank):
        items = by_lane[name]
        drawn = [_clipped(i, outcome) for i in items]
        lane = _lane(name, y, row, drawn, axis, _tail_note(items, outcome))
        lanes.append(lane)
        y += lane.h
    return Chart(
        kind="lanes",
        caption=caption,
        lanes=tuple(lanes),
        ticks=tuple(axis.ticks()),
        axis_title="ms since the saga started" + (" (this style's own scale)" if zoom else ""),
        note_title="after the outcome",
        row=row,
        outcome_x=LABEL_WIDTH + axis.x(outcome),
        markers=tuple(_chart_markers(shown, lanes, axis, y)),
        zoom=zoom,
    )


def _chart_markers(
    markers: list[Marker], lanes: list[Lane], axis: LinearAxis, bottom: float
) -> list[ChartMarker]:
    by_name = {lane.name: lane for lane in lanes}
    found = []
    for m in markers:
        x = LABEL_WIDTH + axis.x(m.at_ms)
        title = f"{m.label} at {ms_label(m.at_ms)} ms"
        if m.kind in LINE_MARKERS:
            found.append(ChartMarker(x, 0.0, bottom, m.kind, m.kind, title))
        elif m.lane in by_name:
            lane = by_name[m.lane]
            found.append(ChartMarker(x, lane.y, lane.y + lane.h, "", m.kind, title))
    return found


def _lane_items(saga: SagaTrace) -> dict[str, list[Item]]:
    zero = saga.root.start_ns
    by_lane: dict[str, list[Item]] = {}
    for span in saga.spans:
        root = span is saga.root
        start, end = (span.start_ns - zero) / 1e6, (span.end_ns - zero) / 1e6
        title = f"{span.name}: {ms_label(end - start)} ms from {ms_label(start)} ms"
        item = Item(start, end, span_class(span, root=root), title)
        by_lane.setdefault(lane_of(span, root=root), []).append(item)
    for receiver, sent in queue_waits(saga):
        start, end = (sent - zero) / 1e6, (receiver.start_ns - zero) / 1e6
        if end > start:
            title = f"waiting for {receiver.name}: {ms_label(end - start)} ms"
            by_lane.setdefault(lane_of(receiver), []).append(Item(start, end, "wait", title))
    return by_lane


def _clipped(item: Item, outcome: float) -> Item | None:
    """The part before the outcome, marked when cut; None when it all came after."""
    if item.end <= outcome:
        return item
    if item.start >= outcome:
        return None
    late = f"; {ms_label(item.end - outcome)} ms of it after the outcome"
    return Item(item.start, outcome, f"{item.css} clipped", item.title + late)


def _tail_note(items: list[Item], outcome: float) -> tuple[str, ...]:
    tail = max((i.end for i in items), default=0.0) - outcome
    return (f"+{ms_label(tail)} ms after the outcome",) if tail >= 0.05 else ()


def _lane(
    name: str,
    y: float,
    row: float,
    items: list[Item | None],
    axis: LinearAxis,
    notes: tuple[str, ...],
    *,
    strip: bool = False,
) -> Lane:
    """A lane as tall as the rows its bars need so that none overlaps another; a strip has
    two fixed rows instead, the saga above its steps."""
    drawn = [i for i in items if i is not None]
    boxes = [(_box(i, axis), i) for i in drawn]
    placed = _strip_rows(boxes) if strip else _pack(boxes)
    rows = max((r for r, _, _ in placed), default=0) + 1
    bars = tuple(
        Bar(LABEL_WIDTH + x, y + LANE_PAD + r * (row + 2), w, row, item.css, item.title)
        for r, (x, w), item in placed
    )
    return Lane(name, y, rows * (row + 2) + 2 * LANE_PAD - 2, bars, notes)


def _box(item: Item, axis: LinearAxis | LogAxis) -> tuple[float, float]:
    """Pixel x and width inside the plot, at least ``MIN_BAR`` wide and never past its end."""
    x = axis.x(item.start)
    w = max(axis.x(item.end) - x, MIN_BAR)
    return min(x, PLOT_WIDTH - w), w


def _pack(
    boxes: list[tuple[tuple[float, float], Item]],
) -> list[tuple[int, tuple[float, float], Item]]:
    """First-fit rows, so that no two bars of a lane overlap."""
    ends: list[float] = []
    placed = []
    for (x, w), item in sorted(boxes, key=lambda b: (b[0][0], -b[0][1])):
        row = next((r for r, end in enumerate(ends) if end <= x), len(ends))
        if row == len(ends):
            ends.append(0.0)
        ends[row] = x + w + 1
        placed.append((row, (x, w), item))
    return placed


def _strip_rows(
    boxes: list[tuple[tuple[float, float], Item]],
) -> list[tuple[int, tuple[float, float], Item]]:
    return [(0 if item.css.startswith("saga") else 1, box, item) for box, item in boxes]


def strips(sagas: list[SagaTrace], axis: LinearAxis, caption: str, *, zoom: bool = False) -> Chart:
    """One compact strip per saga of a run: the saga and its steps, clipped at its outcome."""
    zero = min(s.root.start_ns for s in sagas)
    lanes, y, row = [], 0.0, 5.0
    for saga in sorted(sagas, key=lambda s: s.order_id):
        offset = (saga.root.start_ns - zero) / 1e6
        outcome = offset + saga.root.duration_ms
        items = _strip_items(saga, offset)
        drawn = [_clipped(i, outcome) for i in items]
        notes = _tail_note(items, outcome)
        lane = _lane(saga.order_id, y, row, drawn, axis, notes, strip=True)
        lanes.append(lane)
        y += lane.h
    return Chart(
        kind="strips",
        caption=caption,
        lanes=tuple(lanes),
        ticks=tuple(axis.ticks()),
        axis_title="ms since the run's first saga started"
        + (" (this style's own scale)" if zoom else ""),
        note_title="after each outcome",
        row=row,
        zoom=zoom,
    )


def _strip_items(saga: SagaTrace, offset: float) -> list[Item]:
    """The saga's bar, its step spans, and (as a tail) whatever ran after its outcome."""
    zero, end = saga.root.start_ns, offset + saga.root.duration_ms
    label = f"{saga.order_id}: {saga.outcome}" + (f" ({saga.reason})" if saga.reason else "")
    title = f"{label}, {ms_label(saga.root.duration_ms)} ms"
    items = [Item(offset, end, f"saga outcome-{saga.outcome}", title)]
    for span in filter(is_step, saga.spans):
        start = offset + (span.start_ns - zero) / 1e6
        stop = offset + (span.end_ns - zero) / 1e6
        items.append(
            Item(start, stop, span_class(span), f"{span.name}: {ms_label(stop - start)} ms")
        )
    last = offset + (saga.last_end_ns - zero) / 1e6
    if last > end:
        items.append(Item(end, last, "handler", f"{label}: spans after the outcome"))
    return items


def latency_overview(rows: list[tuple[str, dict[str, Spread]]], caption: str) -> Chart:
    """Per scenario, each variant's latency: median (dot) and min-max (whisker), log scale."""
    spreads = [s for _, by_variant in rows for s in by_variant.values()]
    axis = LogAxis.covering(
        min((s.low for s in spreads), default=1.0),
        max((s.high for s in spreads), default=10.0),
        PLOT_WIDTH,
    )
    lanes, y, row = [], 0.0, 9.0
    for scenario, by_variant in rows:
        lane = _overview_lane(scenario, y, row, by_variant, axis)
        lanes.append(lane)
        y += lane.h
    return Chart(
        kind="overview",
        caption=caption,
        lanes=tuple(lanes),
        ticks=tuple(axis.ticks()),
        axis_title="end-to-end latency (log scale): dot = median, line = min-max",
        note_title="median (min-max)",
        row=row,
    )


def _overview_lane(
    scenario: str, y: float, row: float, by_variant: dict[str, Spread], axis: LogAxis
) -> Lane:
    """Two fixed rows, orchestration above choreography, each a whisker and a median dot."""
    bars, notes = [], []
    for index, (variant, css) in enumerate(VARIANT_CLASS.items()):
        spread = by_variant.get(variant)
        if spread is None:
            continue
        top = y + LANE_PAD + index * (row + 2)
        title = f"{scenario}, {variant}: {spread.label()}"
        low, high = axis.x(spread.low), max(axis.x(spread.high), axis.x(spread.low) + MIN_BAR)
        bars.append(
            Bar(LABEL_WIDTH + low, top + row / 2 - 1, high - low, 2, f"whisker {css}", title)
        )
        dot = min(max(axis.x(spread.median) - 3.5, 0.0), PLOT_WIDTH - 7)
        bars.append(Bar(LABEL_WIDTH + dot, top + 1, 7, row - 2, f"median {css}", title))
        notes.append(f"{css}: {spread.label()}")
    return Lane(scenario, y, 2 * (row + 2) + 2 * LANE_PAD - 2, tuple(bars), tuple(notes))
