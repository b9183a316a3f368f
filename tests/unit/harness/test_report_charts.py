"""Chart geometry: one axis per scenario, no bar outside its lane, tails written, all sagas."""

from __future__ import annotations

from pathlib import Path

from harness.report.charts import Chart, shared_axis, strips, swimlanes
from harness.report.traces import SagaTrace, load_traces
from tests.unit.harness.trace_support import TraceBuilder, root, step, write


def saga(
    tmp_path: Path, variant: str, latency: float, late_until: float | None = None
) -> SagaTrace:
    trace = TraceBuilder(trace_id=("1" if variant == "orchestration" else "2") * 32)
    saga_root = root(trace, variant, "o-1", latency)
    step(trace, "reserve_inventory", latency * 0.1, latency * 0.3, parent=saga_root)
    step(trace, "charge_payment", latency * 0.2, latency * 0.5, parent=saga_root)
    if late_until is not None:
        step(trace, "create_shipment", latency * 0.6, late_until, parent=saga_root)
        step(trace, "cancel_shipment", latency + 10, late_until, parent=saga_root)
        trace.span("send saga.shipping.cancelled", late_until, late_until, kind=4)
    (loaded,) = load_traces(write(tmp_path / f"{variant}.jsonl", trace))
    return loaded


def assert_every_bar_inside_its_lane(chart: Chart) -> None:
    for lane in chart.lanes:
        for bar in lane.bars:
            assert chart.plot_x <= bar.x and bar.x + bar.w <= chart.plot_x + chart.plot_width
            assert lane.y <= bar.y and bar.y + bar.h <= lane.y + lane.h


def test_both_styles_of_a_scenario_share_one_time_axis(tmp_path: Path) -> None:
    slow, fast = saga(tmp_path, "orchestration", 443), saga(tmp_path, "choreography", 40)
    axis = shared_axis(max(slow.root.duration_ms, fast.root.duration_ms))

    charts = [swimlanes(s, axis, s.variant) for s in (slow, fast)]

    assert charts[0].ticks == charts[1].ticks
    assert charts[0].ticks[-1].label == "500 ms"
    (fast_saga,) = charts[1].lanes[0].bars
    assert fast_saga.w == 40 / 500 * charts[1].plot_width


def test_lanes_are_services_and_overlapping_steps_take_separate_rows(tmp_path: Path) -> None:
    chart = swimlanes(saga(tmp_path, "choreography", 100), shared_axis(100), "c")

    assert [lane.name for lane in chart.lanes] == ["harness", "inventory", "payment"]
    assert_every_bar_inside_its_lane(chart)


def test_what_runs_past_the_outcome_is_clipped_and_its_length_written(tmp_path: Path) -> None:
    late = saga(tmp_path, "orchestration", 100, late_until=520)

    chart = swimlanes(late, shared_axis(100), "o")

    assert_every_bar_inside_its_lane(chart)
    (shipping,) = [lane for lane in chart.lanes if lane.name == "shipping"]
    assert shipping.notes == ("+420 ms after the outcome",)
    assert [bar.css for bar in shipping.bars] == ["step forward clipped"]
    assert chart.outcome_x == chart.plot_x + chart.plot_width


def test_a_shorter_saga_is_cut_at_its_own_outcome_not_at_the_axis_end(tmp_path: Path) -> None:
    late = saga(tmp_path, "choreography", 40, late_until=300)

    chart = swimlanes(late, shared_axis(443), "c")

    (shipping,) = [lane for lane in chart.lanes if lane.name == "shipping"]
    assert chart.outcome_x is not None
    assert all(bar.x + bar.w <= chart.outcome_x + 1e-6 for bar in shipping.bars)
    assert shipping.notes == ("+260 ms after the outcome",)


def test_a_run_of_many_sagas_draws_one_strip_per_saga(tmp_path: Path) -> None:
    traces = []
    for index in range(20):
        trace = TraceBuilder(trace_id=f"{index + 1:032x}")
        saga_root = trace.span(
            f"saga choreography race-{index + 1:02d}",
            index,
            100 + 10 * index,
            attrs={
                "saga.id": f"r{index}",
                "saga.variant": "choreography",
                "saga.order_id": f"race-{index + 1:02d}",
            },
        )
        step(trace, "reserve_inventory", index + 5, index + 30, parent=saga_root)
        traces.append(trace)
    sagas = load_traces(write(tmp_path / "race.jsonl", *traces))

    chart = strips(sagas, shared_axis(290), "all")

    assert [lane.name for lane in chart.lanes] == [f"race-{i:02d}" for i in range(1, 21)]
    assert_every_bar_inside_its_lane(chart)
