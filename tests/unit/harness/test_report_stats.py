"""Medians with min-max, per scenario and variant, never pooled across scenarios."""

from __future__ import annotations

from harness.report.stats import Spread, median_run, median_saga, scenario_stats
from harness.report.traces import SagaMetrics


def metrics(
    scenario: str, variant: str, repeat: int, e2e: float, order: str = "o-1"
) -> SagaMetrics:
    return SagaMetrics(
        variant=variant,
        scenario=scenario,
        repeat=repeat,
        order_id=order,
        trace_id="a" * 32,
        outcome="COMPLETED",
        reason=None,
        e2e_ms=e2e,
        quiescence_ms=e2e + 5,
        tail_ms=5,
        work_ms=e2e / 2,
        queue_ms=e2e / 4,
        coordination_ms=e2e / 4,
        spans=10,
        spans_by_kind={"internal": 10},
        messages=4,
        retries=1,
        failure_to_compensation_ms=None,
    )


def test_a_spread_is_the_median_with_min_and_max() -> None:
    spread = Spread.of([150, 90, 110])

    assert spread == Spread(110, 90, 150, 3)
    assert spread.label() == "110 ms (90-150)"
    assert Spread.of([7.25]) == Spread(7.25, 7.25, 7.25, 1)
    assert Spread(7.25, 7.25, 7.25, 1).label() == "7.2 ms"
    assert Spread(32, 32, 32, 3).count_label() == "32"
    assert Spread.of([]) is None


def test_twenty_racing_sagas_do_not_move_another_scenarios_median() -> None:
    happy = [
        metrics("happy_path", "orchestration", r, ms) for r, ms in ((1, 150), (2, 90), (3, 110))
    ]
    race = [
        metrics("race", "orchestration", r, 900 + i, order=f"race-{i}")
        for r in (1, 2, 3)
        for i in range(20)
    ]

    stats = scenario_stats(happy + race)

    assert stats["happy_path"]["orchestration"].latency == Spread(110, 90, 150, 3)
    assert stats["happy_path"]["orchestration"].samples == "1 saga x 3 runs"
    assert stats["race"]["orchestration"].samples == "20 sagas x 3 runs"
    assert stats["race"]["orchestration"].retries_per_run == Spread(20, 20, 20, 3)


def test_the_drawn_run_and_saga_are_the_median_ones() -> None:
    runs = [metrics("s", "choreography", r, ms) for r, ms in ((1, 40), (2, 12), (3, 25))]

    assert median_run(runs) == 3
    assert median_saga(runs).e2e_ms == 25
