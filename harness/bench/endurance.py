"""An open run held for minutes: does any process's memory keep growing, does latency drift?

The first minutes of a run warm caches, pools and the JIT-less interpreter's heaps; what
matters is what happens after them. From the once-a-second memory samples (by process: the
harness, which hosts the services or the worker when they run in-process; the broker or the
Temporal server; the database; attached to a deployment from ``up``, each of its processes
by name -- ``worker``, ``payment``, ``tracker`` ...) the slope of each one's resident memory
after the settling time, and from the sagas due after it, how much p95 moved from the first
half of the rest of the run to the second. The targets (issue 21): after the first two
minutes, no process grows more than 2 MB/min and p95 drifts less than 10%.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness.bench.load import Sample
from harness.bench.resources import MemorySample, slope_per_min
from harness.report.traces import percentile

SETTLE_S = 120.0
"""What is left out of the slopes and the drift: the run's first two minutes ..."""
SETTLE_SHARE = 0.2
"""... or its first fifth, when it is shorter than ten minutes."""
MB_PER_MIN = 2.0
P95_DRIFT = 0.10
ENDURANCE_S = 300.0
"""Open runs at least this long are held to the targets; shorter ones only show the figures."""
MIN_HALF = 20
"""Sagas each half needs for its p95 to mean anything."""


def settle_s(duration_s: float) -> float:
    """Seconds from the start left out of an open run's slopes and drift."""
    return min(SETTLE_S, SETTLE_SHARE * duration_s)


def slopes_after(samples: Sequence[MemorySample], settle: float) -> dict[str, float]:
    """Each process's resident-memory slope (MB/min) over the samples after ``settle``."""
    later = [s for s in samples if s.at >= settle]
    names = dict.fromkeys(name for s in later for name in s.by_process)
    return {
        name: slope_per_min([(s.at, s.by_process[name]) for s in later if name in s.by_process])
        for name in names
    }


def p95_drift(samples: Sequence[Sample], settle: float) -> float | None:
    """p95 of the second half of the sagas due after ``settle`` against the first half's
    (+0.10: 10% slower); None when either half is too small to say."""
    due = sorted(
        (s for s in samples if s.scheduled >= settle and s.latency_s is not None),
        key=lambda s: s.scheduled,
    )
    half = len(due) // 2
    if half < MIN_HALF:
        return None
    first = percentile([s.latency_s or 0.0 for s in due[:half]], 95)
    second = percentile([s.latency_s or 0.0 for s in due[half:]], 95)
    return second / first - 1 if first > 0 else None


def by_process(samples: Sequence[MemorySample]) -> dict[str, list[list[float]]]:
    """Timeline series ``memory:<name>``: [seconds, MB] per sample, one per process name."""
    series: dict[str, list[list[float]]] = {}
    for sample in samples:
        for name, mb in sample.by_process.items():
            series.setdefault(f"memory:{name}", []).append([sample.at, mb])
    return series


def endurance(runs: Sequence[dict[str, Any]], duration_s: float) -> dict[str, dict[str, Any]]:
    """Per open saga run at least `ENDURANCE_S` long: each kind's slope and the p95 drift
    against the targets (keyed ``style@rate``)."""
    if duration_s < ENDURANCE_S:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for m in runs:
        if m["load"] != "open" or m["kind"] != "saga":
            continue
        slopes: dict[str, float] = m.get("rss_slope_after_settle", {})
        drift = m.get("p95_drift")
        growing = sorted(kind for kind, slope in slopes.items() if slope > MB_PER_MIN)
        drifting = drift is not None and drift >= P95_DRIFT
        out[f"{m['style']}@{m['rate']:g}"] = {
            "style": m["style"],
            "rate": m["rate"],
            "settle_s": m.get("settle_s", settle_s(duration_s)),
            "mb_per_min": slopes,
            "growing": growing,
            "p95_drift": drift,
            "mb_per_min_target": MB_PER_MIN,
            "p95_drift_target": P95_DRIFT,
            "met": not growing and not drifting and drift is not None,
        }
    return out
