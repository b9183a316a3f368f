"""Every bad input: exit 2, one stderr line naming the problem and the fix, nothing left behind."""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

DATA = Path(__file__).parents[1] / "data"

ORDER: dict[str, Any] = {
    "order_id": "bad-1",
    "customer_id": "alice",
    "items": [{"product_id": "widget", "quantity": 1, "unit_price_cents": 1999}],
    "payment_method": "card-4242",
    "points_to_use": 10,
    "shipping_address": {
        "name": "Zoë",
        "street": "1 Main St",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    },
}

Case = Callable[[Path], tuple[list[str], dict[str, str]]]


def closed_port() -> int:
    """A loopback port nothing listens on (the OS just handed it out and it was closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def order_bytes(inputs: Path, data: bytes) -> list[str]:
    path = inputs / "order.json"
    path.write_bytes(data)
    return ["order", "--file", str(path)]


def trace_file(inputs: Path, data: bytes) -> list[str]:
    path = inputs / "traces.jsonl"
    path.write_bytes(data)
    return ["report", str(path)]


def run_with(**env: str) -> tuple[list[str], dict[str, str]]:
    return ["run", "--scenario", "happy_path"], env


HAPPY = ["run", "--scenario", "happy_path"]

CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    "binary order file": (
        lambda d: (order_bytes(d, bytes(range(256))), {}),
        ("order.json", "not UTF-8", "save it as UTF-8"),
    ),
    "Latin-1 order file": (
        lambda d: (order_bytes(d, json.dumps(ORDER, ensure_ascii=False).encode("latin-1")), {}),
        ("order.json", "not UTF-8", "byte 0xeb"),
    ),
    "5,000-digit integer": (
        lambda d: (
            order_bytes(d, json.dumps(ORDER).replace(": 10,", ": " + "9" * 5000 + ",").encode()),
            {},
        ),
        ("points_to_use", "5000-digit number", "20 digits"),
    ),
    "JSON nested 100,000 deep": (
        lambda d: (order_bytes(d, b'{"order_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"), {}),
        ("order.json", "nests JSON too deeply"),
    ),
    "order file of 2 MB": (
        lambda d: (order_bytes(d, b" " * 2_000_000), {}),
        ("order.json", "larger than 1,000,000 bytes"),
    ),
    "--report-dir inside /proc": (
        lambda d: ([*HAPPY, "--report-dir", "/proc/saga-compare-test/report"], {}),
        ("--report-dir /proc/saga-compare-test/report", "cannot be written", "pass a folder"),
    ),
    "--report-dir inside /sys": (
        lambda d: ([*HAPPY, "--report-dir", "/sys/saga-compare-test"], {}),
        ("--report-dir /sys/saga-compare-test", "cannot be written"),
    ),
    "--report-dir onto an existing file": (
        lambda d: ([*HAPPY, "--report-dir", str(d / "order.json")], {}),
        ("order.json is a file, not a folder", "pass a folder"),
    ),
    "report on a line that is an array": (
        lambda d: (trace_file(d, b"[1, 2]\n"), {}),
        ("traces.jsonl is not an OTLP JSON lines trace file",),
    ),
    'report on {"resourceSpans": 5}': (
        lambda d: (trace_file(d, b'{"resourceSpans": 5}\n'), {}),
        ("traces.jsonl is not an OTLP JSON lines trace file",),
    ),
    "report on a binary file": (
        lambda d: (trace_file(d, bytes(range(256))), {}),
        ("traces.jsonl is not an OTLP JSON lines trace file",),
    ),
    "report into /proc": (
        lambda d: (["report", str(DATA / "small_traces.jsonl"), "--report-dir", "/proc/x/y"], {}),
        ("--report-dir /proc/x/y", "cannot be written"),
    ),
    "order file with a key given twice": (
        lambda d: (
            order_bytes(
                d,
                json.dumps(ORDER)
                .replace('"points_to_use": 10,', '"points_to_use": 10, "points_to_use": 900,')
                .encode(),
            ),
            {},
        ),
        ("order.json", "'points_to_use' twice", "keep one"),
    ),
    "SAGA_POSTGRES_URL that is not a URL": (
        lambda d: run_with(SAGA_STORE="postgres", SAGA_POSTGRES_URL="notaurl"),
        ("SAGA_POSTGRES_URL='notaurl'", "not a Postgres URL", "postgresql://"),
    ),
    "SAGA_POSTGRES_URL of another database": (
        lambda d: run_with(SAGA_STORE="postgres", SAGA_POSTGRES_URL="mysql://app:secret@db/shop"),
        ("SAGA_POSTGRES_URL='mysql://app:***@db/shop'", "not a Postgres URL", "postgresql://"),
    ),
    "unreachable SAGA_NATS_URL": (
        lambda d: run_with(SAGA_NATS_URL=f"nats://127.0.0.1:{closed_port()}"),
        ("cannot use NATS", "connection refused", "SAGA_NATS_URL"),
    ),
    "malformed SAGA_NATS_URL": (
        lambda d: run_with(SAGA_NATS_URL="nats://127.0.0.1:port"),
        ("SAGA_NATS_URL='nats://127.0.0.1:port'", "is not a NATS URL", "nats://HOST:PORT"),
    ),
    "unreachable SAGA_TEMPORAL_ADDRESS": (
        lambda d: run_with(SAGA_TEMPORAL_ADDRESS=f"127.0.0.1:{closed_port()}"),
        ("cannot reach Temporal", "connection refused", "SAGA_TEMPORAL_ADDRESS"),
    ),
    "malformed SAGA_TEMPORAL_ADDRESS": (
        lambda d: run_with(SAGA_TEMPORAL_ADDRESS="http://localhost"),
        ("SAGA_TEMPORAL_ADDRESS='http://localhost' is not HOST:PORT",),
    ),
    "invalid SAGA_NATS_REPLICAS": (
        lambda d: run_with(SAGA_NATS_REPLICAS="2"),
        ("SAGA_NATS_REPLICAS='2'", "fix it or unset it"),
    ),
    "unwritable data dir": (
        lambda d: run_with(SAGA_DATA_DIR="/sys/saga-compare-test"),
        ("SAGA_DATA_DIR /sys/saga-compare-test cannot be written", "unset it"),
    ),
    "bench --orders 10**12": (
        lambda d: (["bench", "--orders", str(10**12)], {}),
        ("--orders", "less than or equal to 10000", "saga-compare bench --help"),
    ),
    "bench --concurrency 10**6": (
        lambda d: (["bench", "--concurrency", str(10**6)], {}),
        ("--concurrency", "less than or equal to 1000"),
    ),
    "bench --rate abc": (
        lambda d: (["bench", "--rate", "5,abc"], {}),
        ("--rate", "'abc' is not a number of sagas per second", "saga-compare bench --help"),
    ),
    "bench --rate 0": (
        lambda d: (["bench", "--rate", "0"], {}),
        ("--rate", "0 is not in (0, 1000] sagas per second"),
    ),
    "bench --duration 10**6": (
        lambda d: (["bench", "--rate", "5", "--duration", str(10**6)], {}),
        ("--duration", "less than or equal to 3600"),
    ),
    "bench rate x duration too large": (
        lambda d: (["bench", "--rate", "1000", "--duration", "3600"], {}),
        ("starts 3,600,000 sagas", "rate x duration <= 200,000"),
    ),
    "bench --keep-traces without a report folder": (
        lambda d: (["bench", "--keep-traces"], {}),
        ("--keep-traces writes into the report folder", "add --report-dir DIR"),
    ),
    "bench --repeat 10**3": (
        lambda d: (["bench", "--repeat", "1000"], {}),
        ("--repeat", "less than or equal to 20"),
    ),
    "bench --activities sideways": (
        lambda d: (["bench", "--activities", "sideways"], {}),
        ("--activities", "'sideways' is not one of"),
    ),
    "run --timeout 10**9": (
        lambda d: ([*HAPPY, "--timeout", str(10**9)], {}),
        ("--timeout", "less than or equal to 3600"),
    ),
    "chaos --kill relay": (
        lambda d: (["chaos", "--kill", "payment,relay"], {}),
        ("--kill relay", "not a process of its own", "kill the service"),
    ),
    "chaos --kill an unknown kind": (
        lambda d: (["chaos", "--kill", "paymnet"], {}),
        ("--kill paymnet: unknown kind", "choose from", "worker"),
    ),
    "run --attach where nothing runs": (
        lambda d: ([*HAPPY, "--attach", str(d)], {}),
        ("no deployment is running in", "saga-compare up --state-dir"),
    ),
    "check with no deployment": (
        lambda d: (["check"], {}),
        ("no deployment is running in", "saga-compare up"),
    ),
    "check --since that is no time": (
        lambda d: (["check", "--since", "yesterday"], {}),
        ("--since 'yesterday'", "30s, 10m", "ISO time"),
    ),
    "up --state-dir inside /proc": (
        lambda d: (["up", "--state-dir", "/proc/saga-compare-test/state"], {}),
        ("--state-dir /proc/saga-compare-test/state", "cannot be written", "pass a folder"),
    ),
    "review --anomaly that is none": (
        lambda d: (["review", "--out", str(d / "review"), "--anomaly", "phantom_read"], {}),
        ("--anomaly 'phantom_read': no such anomaly", "lost_update", "all"),
    ),
    "--json with a value": (
        lambda d: ([*HAPPY, "--json", "true"], {}),
        ("unexpected extra argument", "saga-compare run --help"),
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_is_exit_two_with_one_line_and_nothing_left_behind(cli: Cli, case: str) -> None:
    build, fragments = CASES[case]
    (cli.inputs / "order.json").write_text(json.dumps(ORDER))
    args, env = build(cli.inputs)
    before = sorted(cli.inputs.iterdir())

    result = cli(*args, env=env, timeout=120)

    cli.assert_one_line_error(result, *fragments)
    assert result.stdout == ""
    assert cli.leftovers() == []
    assert sorted(cli.inputs.iterdir()) == before


def test_a_report_dir_the_run_would_create_is_removed_when_the_run_is_refused(cli: Cli) -> None:
    report = cli.inputs / "new" / "report"

    result = cli(*HAPPY, "--report-dir", str(report), env={"SAGA_NATS_REPLICAS": "7"})

    cli.assert_one_line_error(result, "SAGA_NATS_REPLICAS")
    assert not (cli.inputs / "new").exists()


def test_an_unreachable_server_removes_the_report_folder_the_run_created(cli: Cli) -> None:
    report = cli.inputs / "report"
    env = {"SAGA_TEMPORAL_ADDRESS": f"127.0.0.1:{closed_port()}"}

    result = cli(*HAPPY, "--variant", "orchestration", "--report-dir", str(report), env=env)

    cli.assert_one_line_error(result, "cannot reach Temporal")
    assert not report.exists()
    assert cli.leftovers() == []


def test_a_results_file_that_is_not_a_results_document_is_refused(cli: Cli) -> None:
    shutil.copyfile(DATA / "small_traces.jsonl", cli.inputs / "traces.jsonl")
    (cli.inputs / "results.json").write_text("[]")

    result = cli("report", str(cli.inputs / "traces.jsonl"))

    cli.assert_one_line_error(result, "results.json is not a results.json a run wrote")
    assert sorted(p.name for p in cli.inputs.iterdir()) == ["results.json", "traces.jsonl"]
