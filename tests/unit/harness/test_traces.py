"""Trace analysis on a committed two-saga file whose answers were worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.report.traces import load_traces, percentile, queue_gaps, render_tree, saga_metrics
from tests.unit.harness.trace_support import BASE_NS, TraceBuilder, root, step, write

SMALL = Path(__file__).parents[2] / "data" / "small_traces.jsonl"


def test_spans_from_several_lines_and_processes_form_one_tree_per_saga() -> None:
    sagas = load_traces(SMALL)
    assert [(s.variant, s.scenario, s.order_id) for s in sagas] == [
        ("choreography", "happy_path", "o-1"),
        ("orchestration", "shipment_failed", "o-2"),
    ]
    assert render_tree(sagas[0]) == "\n".join(
        [
            "saga o-1",
            "  process saga.order.placed",
            "    reserve_inventory [saga.step=reserve_inventory saga.phase=forward]",
            "      process saga.inventory.reserved",
            "        charge_payment [saga.step=charge_payment saga.phase=forward]",
        ]
    )


def test_choreography_saga_split_into_work_queue_and_coordination() -> None:
    metrics = saga_metrics(load_traces(SMALL)[0])
    assert metrics.e2e_ms == pytest.approx(100)
    assert metrics.work_ms == pytest.approx(50)  # 15-35 and 55-85
    assert metrics.queue_ms == pytest.approx(25)  # 0-10 (root still open) and 35-50
    assert metrics.coordination_ms == pytest.approx(25)
    assert metrics.spans_by_kind == {"internal": 3, "consumer": 2}
    assert (metrics.messages, metrics.retries) == (2, 1)
    assert metrics.failure_to_compensation_ms is None
    assert metrics.outcome == "COMPLETED"


def test_orchestration_saga_split_and_time_from_failure_to_compensation() -> None:
    metrics = saga_metrics(load_traces(SMALL)[1])
    assert metrics.e2e_ms == pytest.approx(200)
    assert metrics.work_ms == pytest.approx(50)
    assert metrics.queue_ms == pytest.approx(45)  # 15-30, 40-60, 120-130
    assert metrics.coordination_ms == pytest.approx(105)
    assert metrics.spans_by_kind == {"internal": 3, "client": 3, "server": 3}
    assert metrics.messages == 3
    assert metrics.failure_to_compensation_ms == pytest.approx(40)  # 95 -> 135
    assert (metrics.outcome, metrics.reason) == ("COMPENSATED", "shipment_failed")


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5], 99) == 5
    assert percentile([], 50) == 0


def test_a_root_named_with_its_variant_gives_variant_order_and_run(tmp_path: Path) -> None:
    trace = TraceBuilder()
    root(trace, "orchestration", "happy-1", 40, {"saga.repeat": 2})

    (saga,) = load_traces(write(tmp_path / "t.jsonl", trace))

    assert (saga.root.name, saga.variant, saga.order_id) == (
        "saga orchestration happy-1",
        "orchestration",
        "happy-1",
    )
    assert saga.repeat == 2


def test_a_file_without_runs_counts_as_run_one() -> None:
    assert {s.repeat for s in load_traces(SMALL)} == {1}


def test_a_parentless_tracker_or_step_span_is_not_taken_for_a_saga(tmp_path: Path) -> None:
    lost = TraceBuilder(trace_id="1" * 32)
    lost.span("cancel timed_out", 0, 5, attrs={"saga.id": "x-t", "saga.variant": "choreography"})
    step(lost, "release_inventory", 6, 8, parent="f" * 16)
    orphan = TraceBuilder(trace_id="2" * 32)
    step(orphan, "reserve_inventory", 0, 1, parent="e" * 16)
    real = TraceBuilder(trace_id="3" * 32)
    root(real, "choreography", "o-9", 10)

    sagas = load_traces(write(tmp_path / "t.jsonl", lost, orphan, real))

    assert [s.order_id for s in sagas] == ["o-9"]


def test_two_saga_roots_in_one_trace_each_keep_their_own_spans(tmp_path: Path) -> None:
    trace = TraceBuilder()
    first = root(trace, "choreography", "a", 20)
    second = root(trace, "choreography", "b", 30)
    step(trace, "reserve_inventory", 1, 5, parent=first)
    step(trace, "charge_payment", 2, 9, parent=second)

    sagas = load_traces(write(tmp_path / "t.jsonl", trace))

    assert {s.order_id: [x.name for x in s.spans][1:] for s in sagas} == {
        "a": ["reserve_inventory"],
        "b": ["charge_payment"],
    }


def test_work_after_the_outcome_is_the_tail_and_sets_time_to_quiescence(tmp_path: Path) -> None:
    trace = TraceBuilder()
    saga_root = root(trace, "choreography", "o-1", 100)
    step(trace, "reserve_inventory", 10, 30, parent=saga_root)
    trace.span("process saga.points.deducted", 90, 520, parent=saga_root, kind=5)

    metrics = saga_metrics(load_traces(write(tmp_path / "t.jsonl", trace))[0])

    assert metrics.e2e_ms == pytest.approx(100)
    assert metrics.quiescence_ms == pytest.approx(520)
    assert metrics.tail_ms == pytest.approx(420)


def test_a_retried_activity_waits_from_its_previous_attempt_not_from_the_first_send(
    tmp_path: Path,
) -> None:
    trace = TraceBuilder()
    saga_root = root(trace, "orchestration", "o-1", 200)
    send = trace.span("StartActivity:charge_payment", 10, 10, parent=saga_root, kind=3)
    trace.span("RunActivity:charge_payment", 20, 30, parent=send, kind=2)
    trace.span("RunActivity:charge_payment", 80, 90, parent=send, kind=2)

    (saga,) = load_traces(write(tmp_path / "t.jsonl", trace))

    assert sorted(queue_gaps(saga)) == [
        (BASE_NS + 10_000_000, BASE_NS + 20_000_000),
        (BASE_NS + 30_000_000, BASE_NS + 80_000_000),
    ]
    assert saga_metrics(saga).queue_ms == pytest.approx(60)


def test_work_queue_and_coordination_add_up_to_the_latency_when_waits_overlap_work(
    tmp_path: Path,
) -> None:
    trace = TraceBuilder()
    saga_root = root(trace, "choreography", "o-1", 100)
    send = trace.span("send saga.order.placed", 0, 0, parent=saga_root, kind=4)
    step(trace, "reserve_inventory", 0, 50, parent=saga_root)
    trace.span("process saga.order.placed", 40, 60, parent=send, kind=5)

    metrics = saga_metrics(load_traces(write(tmp_path / "t.jsonl", trace))[0])

    assert metrics.work_ms == pytest.approx(50)
    assert metrics.queue_ms == pytest.approx(0)
    total = metrics.work_ms + metrics.queue_ms + metrics.coordination_ms
    assert total == pytest.approx(metrics.e2e_ms)
