"""Template set-up and the small formatting helpers the pages use (autoescaped Jinja2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from shared.read_model import ListedStatus, SagaDetail, StepView

HERE = Path(__file__).parent


def duration(seconds: float | None) -> str:
    """``35 ms``, ``1.2 s``, ``3 min 5 s``, ``2 h 4 min``; an em dash when unknown."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def age(seconds: float | None) -> str:
    """How long ago, coarse on purpose: a fragment whose ages did not visibly change is
    answered 304, so an idle page costs almost nothing."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86_400:
        return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
    return f"{int(seconds // 86_400)} d"


def clock(at: float | None) -> str:
    """Wall-clock time of day in UTC, to the millisecond."""
    if at is None:
        return "—"
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def deadline_text(detail: SagaDetail, now: float) -> str:
    """The business deadline as it matters now: ahead or passed while the saga runs; once it
    settled, whether it was met (a deadline "1 min ago" on a finished saga reads as a fault).

    A saga an operator finished (a retry completed or compensated it) is judged by when it
    began to wait: it stopped where only a person could take it on, and the deadline, which
    only decides whether a saga still goes forward, had nothing left to decide.
    """
    at = detail.deadline_at
    if at is None:
        return "—"
    if detail.row.status.in_flight:
        left = at - now
        return f"in {duration(left)}" if left >= 0 else f"{duration(-left)} ago"
    if detail.row.status is ListedStatus.NEEDS_INTERVENTION and detail.waiting:
        return "none while it waits for an operator"
    settled = detail.row.ended_at if detail.row.ended_at is not None else now
    waits = axis(detail, now).waits if detail.actions else ()
    if waits:
        settled = min(settled, waits[0][0])
    return "met" if settled <= at else f"missed by {duration(settled - at)}"


def make_templates(now: Callable[[], float] = time.time) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = duration
    env.filters["clock"] = clock
    env.globals["ago"] = lambda at: age(None if at is None else max(0.0, now() - at))
    env.globals["until"] = lambda at: None if at is None else at - now()
    env.globals["bars"] = bars
    env.globals["wait_bars"] = wait_bars
    env.globals["deadline"] = lambda detail: deadline_text(detail, now())
    return Jinja2Templates(env=env)


WAIT_SHARE = 0.08
"""How wide an operator's wait is drawn: a share of the saga's own running time, whatever the
wait's length (minutes beside milliseconds would leave every step a sliver)."""


@dataclass(frozen=True)
class Axis:
    """A saga's time axis with its operator waits cut down to `WAIT_SHARE` of its active time.

    ``waits`` are the real intervals during which the saga only waited for a person: from its
    last step before an operator's action to the step that action started (or, while it still
    waits, to now).
    """

    origin: float
    end: float
    waits: tuple[tuple[float, float], ...]

    @property
    def wait_width(self) -> float:
        waited = sum(b - a for a, b in self.waits)
        return WAIT_SHARE * max(self.end - self.origin - waited, 1e-3)

    def at(self, moment: float) -> float:
        """Seconds from the origin on the drawn axis."""
        drawn = moment - self.origin
        for start, stop in self.waits:
            if moment >= stop:
                drawn -= (stop - start) - self.wait_width
            elif moment > start:
                drawn -= (moment - start) * (1 - self.wait_width / (stop - start))
        return drawn

    @property
    def span(self) -> float:
        return self.at(self.end)


def axis(detail: SagaDetail, now: float | None = None) -> Axis:
    """The saga's axis: to its end, its last step, or now; its operator waits cut down."""
    now = time.time() if now is None else now
    origin = detail.row.started_at
    intervals = sorted(
        (s.started_at, s.ended_at if s.ended_at is not None else now)
        for s in detail.steps
        if s.started_at is not None
    )
    ends = [end for _, end in intervals]
    end = max([detail.row.ended_at or 0.0, *ends, origin])
    if detail.row.ended_at is None:
        end = max(end, now)
    moments = [a.at for a in detail.actions]
    if detail.waiting:
        moments.append(now)
    return Axis(origin, end, _waits(intervals, moments, end))


def _waits(
    intervals: list[tuple[float, float]], moments: list[float], end: float
) -> tuple[tuple[float, float], ...]:
    """For each operator moment, the idle stretch around it (after the last step before it,
    until the first step after it, or the end of the timeline)."""
    found: list[tuple[float, float]] = []
    for moment in sorted(moments):
        before = [stop for start, stop in intervals if start <= moment]
        after = [start for start, _ in intervals if start > moment]
        start, stop = max(before, default=moment), min(after, default=end)
        if stop > start and not any(a <= start < b for a, b in found):
            found.append((start, stop))
    return tuple(found)


def bars(detail: SagaDetail, scale_s: float) -> list[tuple[StepView, float, float]]:
    """Each step with its bar's left offset and width in percent of a shared time scale."""
    drawn_axis = axis(detail)
    scale = max(scale_s, 1e-3)
    drawn = []
    for step in detail.steps:
        if step.started_at is None:
            drawn.append((step, 0.0, 0.0))
            continue
        end = step.ended_at if step.ended_at is not None else time.time()
        start_at = drawn_axis.at(step.started_at)
        left = min(100.0, max(0.0, start_at / scale * 100))
        width = min(100.0 - left, max(0.4, (drawn_axis.at(end) - start_at) / scale * 100))
        drawn.append((step, round(left, 2), round(width, 2)))
    return drawn


def wait_bars(detail: SagaDetail, scale_s: float) -> list[tuple[float, float, float]]:
    """Each operator wait: how long it really was, and where it is drawn (left, width %)."""
    drawn_axis = axis(detail)
    scale = max(scale_s, 1e-3)
    return [
        (
            stop - start,
            round(min(100.0, drawn_axis.at(start) / scale * 100), 2),
            round(drawn_axis.wait_width / scale * 100, 2),
        )
        for start, stop in drawn_axis.waits
    ]


def span_s(detail: SagaDetail | None) -> float:
    """How long the saga's timeline is drawn: to its end, its last step, or now, with its
    operator waits cut down."""
    if detail is None:
        return 0.0
    return max(0.0, axis(detail).span)
