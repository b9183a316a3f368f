"""`saga-compare` as a user runs it: a real process, real servers, exit codes and output."""

from __future__ import annotations

import contextlib
import json
import stat
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


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


def test_scenarios_json_lists_the_whole_catalogue(cli: Cli) -> None:
    result = cli("scenarios", "--json")
    assert result.returncode == 0
    names = [s["name"] for s in json.loads(result.stdout)["scenarios"]]
    assert {"happy_path", "customer_cancel", "race_for_last_items"} <= set(names)


def test_catalogue_lists_products_stock_and_point_balances(cli: Cli) -> None:
    result = cli("catalogue")
    assert result.returncode == 0
    assert "last-few" in result.stdout and "sold-out" in result.stdout
    assert "alice 5000" in result.stdout


def test_an_unknown_scenario_is_one_line_naming_the_choices(cli: Cli) -> None:
    cli.assert_one_line_error(cli("run", "--scenario", "nope"), "nope", "happy_path")


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
    cli: Cli, changes: dict[str, Any], fragment: str
) -> None:
    report = cli.inputs / "report"
    result = cli(
        "order", "--file", str(order_file(cli.inputs, **changes)), "--report-dir", str(report)
    )
    cli.assert_one_line_error(result, fragment)
    assert not report.exists()
    assert cli.leftovers() == []


def test_malformed_json_and_a_missing_file_are_one_line_errors(cli: Cli) -> None:
    bad = cli.inputs / "bad.json"
    bad.write_text('{"order_id": ')
    cli.assert_one_line_error(cli("order", "--file", str(bad)), "not valid JSON")
    cli.assert_one_line_error(
        cli("order", "--file", str(cli.inputs / "absent.json")), "cannot read"
    )


def test_a_missing_trace_file_is_a_one_line_error(cli: Cli) -> None:
    cli.assert_one_line_error(cli("report", str(cli.inputs / "none.jsonl")), "not found")


def test_run_both_variants_prints_the_json_document_and_exits_zero(cli: Cli) -> None:
    result = cli("run", "--scenario", "payment_declined", "--json")
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


def test_run_on_postgres_keeps_each_variants_state_in_its_own_schemas_and_stops_the_server(
    cli: Cli,
) -> None:
    # As root the embedded Postgres runs as a system user, who must be able to enter TMPDIR
    # (pytest's folders are private; /tmp is not).
    for folder in (cli.tmp, *cli.tmp.parents):
        if folder == Path(tempfile.gettempdir()):
            break
        folder.chmod(folder.stat().st_mode | stat.S_IXOTH)
    result = cli("run", "--scenario", "race_for_last_items", "--store", "postgres", "--json")

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["equivalent"] is True and all(doc["invariants"].values())
    statuses = [r["status"] for r in doc["results"]]
    assert statuses.count("COMPLETED") == 2 * 5  # five units in stock, on each variant
    (log,) = cli.leftovers()  # the run's log, and nothing of the server's state
    assert log.name.endswith(".log")
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(cli.tmp) in str(p.cmdline())]


def test_a_custom_order_runs_and_the_report_rebuilds_from_its_traces(cli: Cli) -> None:
    report = cli.inputs / "report"
    path = order_file(cli.inputs, faults={"rules": [{"step": "charge_payment", "transient": 1}]})

    result = cli(
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
    assert {p.name for p in report.iterdir()} == {
        "report.html",
        "report.md",
        "results.json",
        "traces.jsonl",
        "saga-compare.log",
    }
    rebuilt = cli.inputs / "rebuilt"
    again = cli("report", str(report / "traces.jsonl"), "--report-dir", str(rebuilt))
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == f"report: {rebuilt / 'report.html'}"
    assert "cli-1" in (rebuilt / "report.html").read_text()
    assert "choreography" in (rebuilt / "report.md").read_text()
    for copied in ("traces.jsonl", "results.json"):
        assert (rebuilt / copied).read_bytes() == (report / copied).read_bytes()


def test_a_saga_stuck_past_its_pivot_exits_one_naming_the_step(cli: Cli) -> None:
    path = order_file(cli.inputs, faults={"rules": [{"step": "complete_order", "hang": True}]})
    result = cli(
        "order", "--file", str(path), "--variant", "orchestration", "--timeout", "4", "--json"
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["stuck_in"] == "complete_order"
    first, log = result.stderr.splitlines()
    assert first.startswith("error: saga cli-1-") and first.endswith("stuck in complete_order")
    assert Path(log.removeprefix("log: ")).is_file()
    assert "Traceback" not in result.stderr


def test_a_closed_bench_reports_each_style_against_its_floors_over_repeats(cli: Cli) -> None:
    report = cli.inputs / "bench"
    result = cli(
        "bench", "--orders", "4", "--concurrency", "2", "--repeat", "2", "--no-cold-start",
        "--json", "--report-dir", str(report), timeout=600,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    runs = {(m["style"], m["kind"], m["tracing"]) for m in doc["measurements"]}
    assert runs == {
        ("orchestration/remote", "floor", False),
        ("orchestration/remote", "saga", True),
        ("orchestration/remote", "saga", False),
        ("choreography", "floor", False),
        ("choreography", "durable floor", False),
        ("choreography", "saga", True),
        ("choreography", "saga", False),
    }
    for m in doc["measurements"]:
        assert m["repeats"] == 2 and m["sagas"] == 4
        assert m["throughput"] > 0 and m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"]
        assert sum(m["peak_rss_mb"].values()) > 0 and m["cpu_s"]["harness"] > 0
        assert set(m["cpu_s"]) <= {"harness", "broker", "server", "other"}
        assert m["invariants_held"] is not False
    traced = [m for m in doc["measurements"] if m["kind"] == "saga" and m["tracing"]]
    assert all(m["step_p95_ms"] and m["spans_per_saga"] > 0 for m in traced)
    for m in doc["measurements"]:  # the servers are measured too
        assert ("broker" if m["style"] == "choreography" else "server") in m["peak_rss_mb"]
    chor = doc["verdict"]["choreography"]
    assert set(chor["ratios"]) == {"floor", "durable floor"}
    assert all(len(check["runs"]) == 2 and check["median"] > 0 for check in chor["ratios"].values())
    assert doc["verdict"]["orchestration/remote"]["ratios"]["floor"]["median"] > 0
    assert ET.fromstring((report / "bench.svg").read_text()).tag.endswith("svg")
    calibrated = {op["key"] for op in doc["calibration"]["operations"]}
    assert calibrated >= {"nats_publish", "nats_consume", "sqlite_tx", "workflow"}
    assert all(op["wall_ms"] > 0 for op in doc["calibration"]["operations"])
    assert all(m["sagas_per_cpu_s"] > 0 for m in doc["measurements"])
    page = (report / "bench.md").read_text()
    assert "### Verdict" in page and "saga-compare bench --orders 4" in page
    assert "### Calibration" in page and "| NATS publish (JetStream ack) |" in page
    assert result.stderr.splitlines() == [f"log: {report / 'saga-compare.log'}"]


def test_an_open_sweep_finds_a_knee_within_the_swept_rates_and_times_a_cold_start(
    cli: Cli,
) -> None:
    report = cli.inputs / "sweep"
    result = cli(
        "bench", "--variant", "choreography", "--rate", "2,4", "--duration", "2",
        "--no-calibrate", "--report-dir", str(report), timeout=600,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "knee" in result.stdout and "cold start" in result.stdout
    doc = json.loads((report / "bench.json").read_text())
    assert doc["plan"]["model"] == "open"
    rates = [m["rate"] for m in doc["measurements"]]
    assert rates == [2.0, 4.0]
    assert [m["sagas"] for m in doc["measurements"]] == [4, 8]
    knee = doc["knees"]["choreography"]
    assert knee["rate"] is None or knee["rate"] in rates
    assert doc["cold_start"]["choreography"]["median"] > 0
    assert all(m["timeline"]["memory"] and m["timeline"]["latency"] for m in doc["runs"])
    labels = " ".join(ET.fromstring((report / "bench.svg").read_text()).itertext())
    assert "offered rate (sagas/s)" in labels and "latency from scheduled start" in labels
    timeline = " ".join(ET.fromstring((report / "bench-timeline.svg").read_text()).itertext())
    assert "seconds since the run started" in timeline


def test_demo_writes_the_report_and_a_summary_readable_in_a_pipe_at_80_columns(cli: Cli) -> None:
    # One run of the catalogue: the demo's own parts are its output, report and log. Several
    # runs (medians, each run numbered) are the session's: tests/e2e/test_report_browser.py.
    result = cli("demo", "--repeat", "1", env={"COLUMNS": "80"}, timeout=600)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    (folder,) = (cli.cwd / "reports").iterdir()
    assert folder.name.startswith("demo-")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("orchestration UI: http://127.0.0.1:")
    assert "UI" not in "".join(lines[1:])
    assert "all checks held" in result.stdout
    assert f"report: reports/{folder.name}/report.html" in lines
    assert result.stderr.splitlines()[-1] == f"log: reports/{folder.name}/saga-compare.log"
    doc = json.loads((folder / "results.json").read_text())
    assert doc["equivalent"] and all(doc["invariants"].values()) and doc["expected_met"]
    assert (doc["schema_version"], doc["repeats"]) == (2, 1)  # --repeat reached (default 3)
    assert {r["scenario"] for r in doc["results"]} >= {"happy_path", "race_for_last_items"}
    assert {r["repeat"] for r in doc["results"]} == {1}
    assert {c["repeat"] for c in doc["comparisons"]} == {1}
    page = (folder / "report.html").read_text()
    assert page.count('<svg class="chart"') >= 2 and "Swimlanes" in page
    assert "1 saga x 1 run |" in (folder / "report.md").read_text()
    assert "…" not in result.stdout
    assert all(len(line) <= 80 for line in lines)
    words = result.stdout.split()
    for row in doc["results"]:
        assert row["scenario"] in words
        assert row["status"] in words
        assert row["reason"] is None or row["reason"] in words


@pytest.mark.parametrize(
    ("repeat", "bound"), [("0", "greater than or equal to 1"), ("21", "less than or equal to 20")]
)
def test_a_repeat_outside_one_to_twenty_is_a_one_line_error(
    cli: Cli, repeat: str, bound: str
) -> None:
    result = cli("demo", "--repeat", repeat)

    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert "--repeat" in line and bound in line and "Traceback" not in result.stderr
    assert not (cli.cwd / "reports").exists()


def running_child(
    parent: subprocess.Popen[str], name: str, argument: str, timeout_s: float = 120
) -> list[str]:
    """The command line of ``parent``'s first descendant named ``name`` and given
    ``argument`` (a server, not a ``--version`` probe of the same binary), once it runs."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and parent.poll() is None:
        for child in psutil.Process(parent.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                line = list(child.cmdline())
                if child.name().startswith(name) and argument in line:
                    return line
        time.sleep(0.05)
    raise AssertionError(f"no {name} process was started ({parent.poll()=})")


def test_a_bench_runs_its_temporal_server_on_a_wal_file_and_says_so(cli: Cli) -> None:
    bench = cli.start(
        "bench", "--variant", "orchestration", "--orders", "2", "--concurrency", "1",
        "--no-cold-start", "--no-calibrate", "--json", stdout=subprocess.PIPE,
    )  # fmt: skip
    server = running_child(bench, "temporal", "start-dev")
    out, err = bench.communicate(timeout=600)

    assert bench.returncode == 0, err
    assert "--db-filename" in server
    pragmas = {server[i + 1] for i, arg in enumerate(server) if arg == "--sqlite-pragma"}
    assert pragmas == {"journal_mode=wal", "synchronous=normal"}
    assert json.loads(out)["plan"]["temporal_db"] == "file"
