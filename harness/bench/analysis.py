"""From measurements to verdicts: ratios to the floors, tracing's cost, knees, repeats.

Ratios and tracing's cost are taken within one repeat (a saga run against the floor measured
in the same run, on the same servers), then their median and range over the repeats. Every
other figure is reported as the median over the repeats with its min and max.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.bench.measure import CLOSED, OPEN, Measurement
from harness.bench.workload import DURABLE_FLOOR, FLOOR, SAGA

TARGETS: dict[str, dict[str, float]] = {
    "choreography": {FLOOR: 0.25, DURABLE_FLOOR: 0.40},
    "orchestration": {FLOOR: 0.85},
}
"""Minimum throughput of the traced saga as a fraction of each floor, by variant."""
TRACING_BUDGET = 0.10
"""Tracing may cost at most this share of the untraced saga's throughput."""
COMPLETION = 0.99
"""A swept rate holds when at least this share of its sagas completed in time ..."""


@dataclass(frozen=True)
class Spread:
    """The median of one figure over the repeats, and its range."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        found = list(values)
        if not found:
            return cls(0.0, 0.0, 0.0)
        return cls(statistics.median(found), min(found), max(found))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high}


Key = tuple[str, str, bool, str, float]
"""A measurement's identity across repeats: style, kind, tracing, load model, rate."""


def key(m: Measurement) -> Key:
    return (m.style, m.kind, m.tracing, m.load, m.rate)


def aggregate(measurements: Sequence[Measurement]) -> list[dict[str, Any]]:
    """One row per measurement key: each number as its median, with ``spread`` for the range."""
    groups: dict[Key, list[Measurement]] = defaultdict(list)
    for m in measurements:
        groups[key(m)].append(m)
    return [_merge(group) for group in groups.values()]


def _merge(group: list[Measurement]) -> dict[str, Any]:
    rows = [m.as_dict() for m in group]
    first = dict(rows[0])
    merged: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for name, value in first.items():
        if isinstance(value, bool) or value is None:
            merged[name] = _all_true(rows, name) if isinstance(value, bool) else value
        elif isinstance(value, (int, float)):
            s = Spread.of(float(row[name]) for row in rows if row[name] is not None)
            merged[name], spread[name] = s.median, s.as_dict()
        elif isinstance(value, dict) and name != "timeline":
            keys = dict.fromkeys(k for row in rows for k in row[name])
            parts = {k: Spread.of(float(row[name].get(k, 0.0)) for row in rows) for k in keys}
            merged[name] = {k: s.median for k, s in parts.items()}
            spread[name] = {k: s.as_dict() for k, s in parts.items()}
        else:
            merged[name] = value
    merged["invariants_held"] = _held(rows)
    merged["timeline"] = rows[-1]["timeline"]
    merged["errors"] = sorted({e for row in rows for e in row["errors"]})[:5]
    merged["repeats"] = len(rows)
    merged["spread"] = spread
    return merged


def _all_true(rows: list[dict[str, Any]], name: str) -> bool:
    return all(bool(row[name]) for row in rows)


def _held(rows: list[dict[str, Any]]) -> bool | None:
    checked = [row["invariants_held"] for row in rows if row["invariants_held"] is not None]
    return all(checked) if checked else None


def variant_of(style: str) -> str:
    return style.split("/", 1)[0]


def verdict(measurements: Sequence[Measurement]) -> dict[str, dict[str, Any]]:
    """Per style: throughput ratios to each floor and tracing's cost, against the targets."""
    closed = [m for m in measurements if m.load == CLOSED]
    out: dict[str, dict[str, Any]] = {}
    for style in dict.fromkeys(m.style for m in closed):
        mine = [m for m in closed if m.style == style]
        measured = {m.kind for m in mine}  # an attached run has no durable floor of its own
        targets = {f: t for f, t in TARGETS.get(variant_of(style), {}).items() if f in measured}
        ratios = {
            floor: _check(_per_repeat(mine, _ratio_to(floor)), target, at_least=True)
            for floor, target in targets.items()
        }
        cost = _check(_per_repeat(mine, _tracing_cost), TRACING_BUDGET, at_least=False)
        out[style] = {"ratios": ratios, "tracing_cost": cost}
    return out


def _check(values: list[float], target: float, *, at_least: bool) -> dict[str, Any]:
    s = Spread.of(values)
    met = (s.median >= target) if at_least else (s.median <= target)
    return {**s.as_dict(), "target": target, "met": bool(values) and met, "runs": values}


Figure = Callable[[dict[tuple[str, bool], Measurement]], float | None]


def _per_repeat(mine: list[Measurement], figure: Figure) -> list[float]:
    by_repeat: dict[int, dict[tuple[str, bool], Measurement]] = defaultdict(dict)
    for m in mine:
        by_repeat[m.repeat][(m.kind, m.tracing)] = m
    values = (figure(runs) for runs in by_repeat.values())
    return [v for v in values if v is not None]


def _ratio_to(floor: str) -> Figure:
    def ratio(runs: dict[tuple[str, bool], Measurement]) -> float | None:
        saga, base = runs.get((SAGA, True)), runs.get((floor, False))
        if saga is None or base is None or base.throughput <= 0:
            return None
        return saga.throughput / base.throughput

    return ratio


def _tracing_cost(runs: dict[tuple[str, bool], Measurement]) -> float | None:
    traced, untraced = runs.get((SAGA, True)), runs.get((SAGA, False))
    if traced is None or untraced is None or untraced.throughput <= 0:
        return None
    return 1 - traced.throughput / untraced.throughput


def holds(m: Measurement, p95_bound_ms: float) -> bool:
    """A swept rate holds: enough sagas completed in time and p95 stayed under the bound."""
    return m.completed_fraction >= COMPLETION and m.p95_ms <= p95_bound_ms


def knee(points: Sequence[Measurement], p95_bound_ms: float) -> dict[str, Any]:
    """The highest swept rate below the first one that does not hold (None: none held).

    ``saturated`` says whether a swept rate failed at all: if not, the knee lies above the
    sweep and the figure is only a lower bound.
    """
    ordered = sorted(points, key=lambda m: m.rate)
    best: float | None = None
    for m in ordered:
        if not holds(m, p95_bound_ms):
            return {"rate": best, "saturated": True, "first_failing_rate": m.rate}
        best = m.rate
    return {"rate": best, "saturated": False, "first_failing_rate": None}


def knees(measurements: Sequence[Measurement], p95_bound_ms: float) -> dict[str, dict[str, Any]]:
    """Each style's knee per repeat, and their median over the repeats."""
    sweep = [m for m in measurements if m.load == OPEN and m.kind == SAGA]
    out: dict[str, dict[str, Any]] = {}
    for style in dict.fromkeys(m.style for m in sweep):
        repeats: dict[int, list[Measurement]] = defaultdict(list)
        for m in sweep:
            if m.style == style:
                repeats[m.repeat].append(m)
        found = [knee(points, p95_bound_ms) for _, points in sorted(repeats.items())]
        rates = [k["rate"] for k in found if k["rate"] is not None]
        out[style] = {
            "rate": statistics.median(rates) if len(rates) == len(found) else None,
            "runs": found,
            "saturated": all(k["saturated"] for k in found),
            "p95_bound_ms": p95_bound_ms,
            "completion": COMPLETION,
        }
    return out
