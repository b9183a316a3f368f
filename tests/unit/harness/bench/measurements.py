"""Hand-made measurements for the analysis, report and chart tests."""

from __future__ import annotations

from typing import Any

from harness.bench.measure import Measurement


def made(**changes: Any) -> Measurement:
    """A plausible measurement; ``changes`` override any field."""
    fields: dict[str, Any] = {
        "style": "choreography",
        "variant": "choreography",
        "kind": "saga",
        "tracing": True,
        "load": "closed",
        "sagas": 100,
        "concurrency": 10,
        "rate": 0.0,
        "completed": 100,
        "wall_s": 2.0,
        "throughput": 50.0,
        "p50_ms": 20.0,
        "p95_ms": 40.0,
        "p99_ms": 60.0,
        "max_ms": 70.0,
        "cpu_s": {"harness": 1.0, "broker": 0.2},
        "cpu_ms_per_saga": 12.0,
        "peak_rss_mb": {"harness": 120.0, "broker": 20.0},
        "rss_growth_mb": 1.0,
        "rss_slope_mb_per_min": 0.5,
        "step_p95_ms": {"reserve_inventory": 2.0, "charge_payment": 3.0},
        "spans_per_saga": 23.0,
        "invariants_held": True,
    }
    fields.update(changes)
    return Measurement(**fields)


def closed_run(
    style: str, repeat: int, floor: float, traced: float, untraced: float
) -> list[Measurement]:
    """A floor, a traced and an untraced run of one style in one repeat."""
    variant = style.split("/")[0]
    common: dict[str, Any] = {"style": style, "variant": variant, "repeat": repeat}
    return [
        made(kind="floor", tracing=False, throughput=floor, step_p95_ms={}, **common),
        made(kind="saga", tracing=True, throughput=traced, **common),
        made(kind="saga", tracing=False, throughput=untraced, step_p95_ms={}, **common),
    ]


def sweep(
    style: str, points: list[tuple[float, float, float]], repeat: int = 1
) -> list[Measurement]:
    """Open runs of one style: (rate, p95 ms, completed fraction) each."""
    return [
        made(
            style=style,
            variant=style.split("/")[0],
            load="open",
            rate=rate,
            p95_ms=p95,
            p50_ms=p95 / 2,
            p99_ms=p95 * 1.2,
            completed=round(100 * fraction),
            throughput=rate * fraction,
            repeat=repeat,
            timeline={
                "memory": [[0.0, 100.0], [1.0, 101.0]],
                "latency": [[0.0, p95 / 2, p95, 5.0]],
            },
        )
        for rate, p95, fraction in points
    ]
