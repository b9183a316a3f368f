"""`saga-compare` as a user runs it: a real process, real servers, exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-c", "from harness.cli import main; main()"]


def saga_compare(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def order_file(tmp_path: Path, **changes: Any) -> Path:
    order: dict[str, Any] = {
        "order_id": "cli-1",
        "customer_id": "alice",
        "items": [{"product_id": "widget", "quantity": 1, "unit_price_cents": 1999}],
        "payment_method": "card-4242",
        "points_to_use": 10,
        "shipping_address": {
            "name": "A",
            "street": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        },
    }
    order.update(changes)
    path = tmp_path / "order.json"
    path.write_text(json.dumps(order))
    return path


def test_scenarios_json_lists_the_whole_catalogue() -> None:
    result = saga_compare("scenarios", "--json")
    assert result.returncode == 0
    names = [s["name"] for s in json.loads(result.stdout)["scenarios"]]
    assert {"happy_path", "customer_cancel", "race_for_last_items"} <= set(names)


def test_catalogue_lists_products_stock_and_point_balances() -> None:
    result = saga_compare("catalogue")
    assert result.returncode == 0
    assert "last-few" in result.stdout and "sold-out" in result.stdout
    assert "alice 5000" in result.stdout


def test_an_unknown_scenario_is_one_line_naming_the_choices() -> None:
    assert_one_line_error(saga_compare("run", "--scenario", "nope"), "nope", "happy_path")


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        (
            {"items": [{"product_id": "widget", "quantity": 0, "unit_price_cents": 1}]},
            "items[0].quantity",
        ),
        ({"items": []}, "items"),
        ({"points_to_use": -5}, "points_to_use"),
        (
            {"items": [{"product_id": "unicorn", "quantity": 1, "unit_price_cents": 1}]},
            "items[0].product_id: unknown product 'unicorn'",
        ),
        (
            {"items": [{"product_id": "widget", "quantity": 1, "unit_price_cents": 1}]},
            "items[0].unit_price_cents: 1 does not match the catalogue price 1999 of widget",
        ),
        ({"customer_id": "mallory", "points_to_use": 0}, "customer_id: unknown customer"),
        (
            {
                "shipping_address": {
                    "name": "A\u0007",
                    "street": "1",
                    "city": "X",
                    "postal_code": "1",
                    "country": "US",
                }
            },
            "shipping_address.name: holds a control character",
        ),
    ],
)
def test_an_invalid_order_file_is_refused_before_anything_starts(
    tmp_path: Path, changes: dict[str, Any], fragment: str
) -> None:
    report = tmp_path / "report"
    result = saga_compare(
        "order", "--file", str(order_file(tmp_path, **changes)), "--report-dir", str(report)
    )
    assert_one_line_error(result, fragment)
    assert not report.exists()


def test_malformed_json_and_a_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"order_id": ')
    assert_one_line_error(saga_compare("order", "--file", str(bad)), "not valid JSON")
    assert_one_line_error(
        saga_compare("order", "--file", str(tmp_path / "absent.json")), "cannot read"
    )


def test_a_missing_trace_file_is_a_one_line_error(tmp_path: Path) -> None:
    assert_one_line_error(saga_compare("report", str(tmp_path / "none.jsonl")), "not found")


def test_run_both_variants_prints_the_json_document_and_exits_zero() -> None:
    result = saga_compare("run", "--scenario", "payment_declined", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc) == {"results", "equivalent", "invariants"}
    assert doc["equivalent"] is True
    assert all(doc["invariants"].values())
    assert sorted(r["variant"] for r in doc["results"]) == ["choreography", "orchestration"]
    for row in doc["results"]:
        assert {
            "variant",
            "scenario",
            "order_id",
            "saga_id",
            "status",
            "reason",
            "steps",
            "final_state",
            "trace_id",
            "duration_ms",
        } <= set(row)
        assert (row["status"], row["reason"]) == ("COMPENSATED", "payment_declined")
        assert len(row["trace_id"]) == 32
        assert {"step", "phase", "status", "attempts"} <= set(row["steps"][0])


def test_a_custom_order_runs_and_the_report_rebuilds_from_its_traces(tmp_path: Path) -> None:
    report = tmp_path / "report"
    path = order_file(tmp_path, faults={"rules": [{"step": "charge_payment", "transient": 1}]})

    result = saga_compare(
        "order",
        "--file",
        str(path),
        "--variant",
        "choreography",
        "--report-dir",
        str(report),
        "--json",
    )

    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)["results"]
    assert row["status"] == "COMPLETED"
    assert {p.name for p in report.iterdir()} >= {
        "report.html",
        "report.md",
        "results.json",
        "traces.jsonl",
    }
    rebuilt = tmp_path / "rebuilt"
    again = saga_compare("report", str(report / "traces.jsonl"), "--report-dir", str(rebuilt))
    assert again.returncode == 0, again.stderr
    assert "cli-1" in (rebuilt / "report.html").read_text()
    assert "choreography" in (rebuilt / "report.md").read_text()


def test_a_saga_stuck_past_its_pivot_exits_one_naming_the_step(tmp_path: Path) -> None:
    path = order_file(tmp_path, faults={"rules": [{"step": "complete_order", "hang": True}]})
    result = saga_compare(
        "order", "--file", str(path), "--variant", "orchestration", "--timeout", "4"
    )
    assert result.returncode == 1
    assert "complete_order" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_reports_each_variant_against_its_floor(tmp_path: Path) -> None:
    result = saga_compare(
        "bench", "--orders", "4", "--concurrency", "2", "--json", "--report-dir", str(tmp_path)
    )

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    runs = {(m["variant"], m["kind"], m["tracing"]) for m in doc["measurements"]}
    for variant in ("orchestration", "choreography"):
        assert {
            (variant, "floor", False),
            (variant, "saga", True),
            (variant, "saga", False),
        } <= runs
        verdict = doc["verdict"][variant]
        assert verdict["ratio_to_floor"] > 0
        assert isinstance(verdict["ratio_met"], bool)
    for m in doc["measurements"]:
        assert m["throughput"] > 0 and m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"]
        assert m["peak_rss_mb"] > 0
    assert (tmp_path / "bench.svg").read_text().startswith("<svg")
    assert "ratio to floor" in (tmp_path / "bench.md").read_text()


def test_demo_runs_the_catalogue_on_both_and_writes_the_report(tmp_path: Path) -> None:
    result = saga_compare(
        "demo", "--repeat", "2", "--report-dir", str(tmp_path / "demo"), timeout=600
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks held" in result.stdout
    assert "orchestration UI" in result.stdout
    doc = json.loads((tmp_path / "demo" / "results.json").read_text())
    assert doc["equivalent"] and all(doc["invariants"].values()) and doc["expected_met"]
    assert (doc["schema_version"], doc["repeats"]) == (2, 2)
    assert {r["scenario"] for r in doc["results"]} >= {"happy_path", "race_for_last_items"}
    assert {r["repeat"] for r in doc["results"]} == {1, 2}
    assert {c["repeat"] for c in doc["comparisons"]} == {1, 2}
    page = (tmp_path / "demo" / "report.html").read_text()
    assert page.count('<svg class="chart"') >= 2 and "Swimlanes" in page
    assert "1 saga x 2 runs" in (tmp_path / "demo" / "report.md").read_text()


@pytest.mark.parametrize("repeat", ["0", "21"])
def test_a_repeat_outside_one_to_twenty_is_a_one_line_error(tmp_path: Path, repeat: str) -> None:
    result = saga_compare("demo", "--repeat", repeat, "--report-dir", str(tmp_path / "demo"))

    assert_one_line_error(result, "--repeat must be between 1 and 20", repeat)
    assert not (tmp_path / "demo").exists()
