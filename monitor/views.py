"""Template set-up and the small formatting helpers the pages use (autoescaped Jinja2)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from shared.read_model import SagaDetail, StepView

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
    return Jinja2Templates(env=env)


def bars(detail: SagaDetail, scale_s: float) -> list[tuple[StepView, float, float]]:
    """Each step with its bar's left offset and width in percent of a shared time scale."""
    origin = detail.row.started_at
    scale = max(scale_s, 1e-3)
    drawn = []
    for step in detail.steps:
        if step.started_at is None:
            drawn.append((step, 0.0, 0.0))
            continue
        end = step.ended_at if step.ended_at is not None else time.time()
        left = min(100.0, max(0.0, (step.started_at - origin) / scale * 100))
        width = min(100.0 - left, max(0.4, (end - step.started_at) / scale * 100))
        drawn.append((step, round(left, 2), round(width, 2)))
    return drawn


def span_s(detail: SagaDetail | None) -> float:
    """How long the saga's timeline is: to its end, its last step, or now."""
    if detail is None:
        return 0.0
    ends = [s.ended_at or s.started_at or 0.0 for s in detail.steps]
    last = max([detail.row.ended_at or 0.0, *ends])
    if detail.row.ended_at is None:
        last = max(last, time.time())
    return max(0.0, last - detail.row.started_at)
