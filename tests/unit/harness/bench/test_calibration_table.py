"""The calibration table's shape and how bench.md and the console show it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.bench.calibration import LABELS, Calibration, Operation, less, per_op
from harness.bench.markdown import bench_markdown, calibration_table, per_core_table
from harness.bench.run import BenchPlan, Style, document
from tests.unit.harness.bench.measurements import closed_run


def table() -> Calibration:
    return Calibration(
        operations=[
            per_op("nats_publish", 200, 0.1, {"harness": 0.06, "broker": 0.02}),
            per_op("sqlite_tx", 200, 0.08, {"harness": 0.04}),
            per_op("workflow", 20, 0.8, {"harness": 0.2, "server": 0.4}),
        ],
        skipped={"postgres_tx": "the run's store is SQLite (a Postgres run has it)"},
        seconds=4.25,
    )


def doc_with(calibration: Calibration | None) -> dict[str, Any]:
    runs = closed_run("choreography", 1, floor=400, traced=100, untraced=110)
    for m in runs:
        m.sagas_per_cpu_s = 1000 / m.cpu_ms_per_saga
    doc = document(BenchPlan((Style("choreography"),)), runs, [], (0.1,) * 3, (0.1,) * 3)
    return {**doc, "calibration": calibration.as_dict() if calibration else None}


def test_one_operation_is_the_batch_divided_by_its_count_in_milliseconds() -> None:
    op = per_op("nats_publish", 200, 0.1, {"harness": 0.06, "broker": 0.02})

    assert op.label == LABELS["nats_publish"]
    assert op.wall_ms == pytest.approx(0.5)
    assert op.cpu_ms == pytest.approx({"harness": 0.3, "broker": 0.1})
    assert op.cpu_ms_total == pytest.approx(0.4)


def test_an_activity_is_what_it_adds_to_an_empty_workflow_never_below_zero() -> None:
    empty = Operation("workflow", "w", 20, 40.0, {"harness": 7.0, "server": 20.0})
    ten = Operation("activity_remote", "a", 4, 360.0, {"harness": 60.0, "server": 19.0})

    found = less(ten, empty, "activity_remote", 10)

    assert found.count == 40
    assert found.wall_ms == pytest.approx(32.0)
    assert found.cpu_ms == pytest.approx({"harness": 5.3, "server": 0.0})


def test_the_table_survives_json_with_every_figure_and_the_skipped_row() -> None:
    doc = json.loads(json.dumps(table().as_dict()))

    assert [op["key"] for op in doc["operations"]] == ["nats_publish", "sqlite_tx", "workflow"]
    assert doc["operations"][0]["cpu_ms_total"] == pytest.approx(0.4)
    assert set(doc["operations"][0]) >= {"label", "count", "wall_ms", "cpu_ms"}
    assert doc["skipped"] == {"postgres_tx": "the run's store is SQLite (a Postgres run has it)"}
    assert doc["seconds"] == 4.25


def test_bench_md_shows_each_operation_with_its_cpu_by_process_and_what_was_left_out() -> None:
    lines = calibration_table(doc_with(table()))

    assert lines[0].startswith("| operation | n | wall ms/op | CPU ms/op |")
    publish = "| NATS publish (JetStream ack) | 200 | 0.50 | 0.40 | harness 0.30, broker 0.10 |"
    assert publish in lines
    assert "| Temporal workflow (empty: start to result) | 20 | 40.00 | 30.00 |" in lines[4]
    assert "Postgres transaction: not measured, the run's store is SQLite" in lines[-2]
    assert lines[-1] == "The calibration took 4.2 s."


def test_bench_md_has_the_calibration_and_sagas_per_busy_core_sections() -> None:
    page = bench_markdown(doc_with(table()), "saga-compare bench")

    assert "### Calibration: one engine operation at a time" in page
    assert "### Sagas per busy core (all processes' CPU)" in page
    assert "| choreography | saga, traced | 12.0 | 83.3 |" in page


def test_a_run_without_calibration_has_no_calibration_section() -> None:
    doc = doc_with(None)

    assert calibration_table(doc) == []
    assert "### Calibration" not in bench_markdown(doc, "saga-compare bench --no-calibrate")
    assert per_core_table(doc)  # the per-core figures come from the runs themselves
