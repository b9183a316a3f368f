"""Verdicts: ratios within one repeat, tracing's cost, knees of a sweep, medians of repeats."""

from __future__ import annotations

import pytest

from harness.bench.analysis import TRACING_BUDGET, aggregate, knee, knees, verdict
from tests.unit.harness.bench.measurements import closed_run, made, sweep


def test_a_ratio_is_taken_within_each_repeat_then_its_median_over_the_repeats() -> None:
    runs = closed_run("orchestration/remote", 1, floor=10, traced=9, untraced=9.5)
    runs += closed_run("orchestration/remote", 2, floor=20, traced=16, untraced=17)
    runs += closed_run("orchestration/remote", 3, floor=10, traced=8, untraced=8.2)

    ratio = verdict(runs)["orchestration/remote"]["ratios"]["floor"]

    assert ratio["runs"] == pytest.approx([0.9, 0.8, 0.8])
    assert ratio["median"] == pytest.approx(0.8)
    assert (ratio["min"], ratio["max"]) == pytest.approx((0.8, 0.9))
    assert ratio["target"] == 0.85 and ratio["met"] is False


def test_the_choreography_is_held_to_both_of_its_floors_and_to_the_tracing_budget() -> None:
    runs = closed_run("choreography", 1, floor=400, traced=110, untraced=120)
    runs.append(made(kind="durable floor", tracing=False, throughput=200.0, repeat=1))

    result = verdict(runs)["choreography"]

    assert result["ratios"]["floor"]["median"] == pytest.approx(0.275)
    assert result["ratios"]["floor"]["met"] is True
    assert result["ratios"]["durable floor"]["median"] == pytest.approx(0.55)
    cost = result["tracing_cost"]
    assert cost["median"] == pytest.approx(1 - 110 / 120)
    assert cost["target"] == TRACING_BUDGET and cost["met"] is True


def test_a_knee_is_the_highest_rate_below_the_first_that_does_not_hold() -> None:
    points = sweep("choreography", [(5, 100, 1.0), (10, 300, 1.0), (20, 3000, 1.0), (40, 90, 1.0)])

    assert knee(points, p95_bound_ms=2000) == {
        "rate": 10,
        "saturated": True,
        "first_failing_rate": 20,
    }


def test_a_rate_with_too_few_sagas_in_time_does_not_hold_even_with_a_low_p95() -> None:
    points = sweep("choreography", [(5, 100, 1.0), (10, 100, 0.98)])

    assert knee(points, p95_bound_ms=2000)["rate"] == 5


def test_a_sweep_that_never_saturates_gives_a_lower_bound_and_one_that_always_does_none() -> None:
    held = sweep("a", [(5, 100, 1.0), (10, 200, 1.0)])
    failed = sweep("b", [(5, 5000, 1.0), (10, 9000, 1.0)])

    found = knees([*held, *failed], p95_bound_ms=1000)

    assert (found["a"]["rate"], found["a"]["saturated"]) == (10, False)
    assert (found["b"]["rate"], found["b"]["saturated"]) == (None, True)


def test_repeats_merge_into_medians_with_their_range() -> None:
    runs = [
        made(throughput=t, repeat=r, cpu_s={"harness": c})
        for r, (t, c) in enumerate([(50.0, 1.0), (70.0, 3.0), (60.0, 2.0)], 1)
    ]

    (row,) = aggregate(runs)

    assert row["repeats"] == 3
    assert row["throughput"] == 60.0
    assert row["spread"]["throughput"] == {"median": 60.0, "min": 50.0, "max": 70.0}
    assert row["cpu_s"] == {"harness": 2.0}
    assert row["spread"]["cpu_s"]["harness"]["max"] == 3.0
    assert row["invariants_held"] is True


def test_one_broken_repeat_makes_the_merged_invariants_broken() -> None:
    runs = [made(repeat=1), made(repeat=2, invariants_held=False)]

    (row,) = aggregate(runs)

    assert row["invariants_held"] is False
