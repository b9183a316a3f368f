"""Trace analysis on a committed two-saga file whose answers were worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.traces import load_traces, percentile, render_tree, saga_metrics, variant_summary

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


def test_summary_groups_by_variant() -> None:
    summary = variant_summary([saga_metrics(s) for s in load_traces(SMALL)])
    assert set(summary) == {"choreography", "orchestration"}
    assert summary["orchestration"]["p50_ms"] == pytest.approx(200)
    assert summary["choreography"]["retries"] == 1


def test_percentile_interpolates() -> None:
    assert percentile([1, 2, 3, 4], 50) == pytest.approx(2.5)
    assert percentile([5], 99) == 5
    assert percentile([], 50) == 0
