"""What a run prints: one JSON document with --json, full words at 80 columns, logs in a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

NOISY_SCENARIOS = {
    # scenario: what the worker logs about it, which used to reach the terminal
    "hang_past_deadline": "CancelledError: Activity cancelled",
    "compensation_never_succeeds": "Completing activity as failed",
    "crash_after_commit": "injected crash in charge_payment",
}


@pytest.mark.parametrize("scenario", list(NOISY_SCENARIOS))
def test_json_stdout_is_one_document_and_the_worker_logs_go_to_the_log_file(
    cli: Cli, scenario: str
) -> None:
    report = cli.cwd / "report"

    result = cli("run", "--scenario", scenario, "--json", "--report-dir", str(report))

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {r["variant"] for r in doc["results"]} == {"orchestration", "choreography"}
    assert result.stderr.splitlines() == [f"log: {report / 'saga-compare.log'}"]
    log = (report / "saga-compare.log").read_text()
    assert NOISY_SCENARIOS[scenario] in log
    assert "temporalio" in log


def test_without_a_report_folder_only_the_log_file_stays_and_its_path_is_printed(
    cli: Cli,
) -> None:
    result = cli("run", "--scenario", "transient_payment_error", "--variant", "orchestration")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("log: ")
    log = Path(last.removeprefix("log: "))
    assert cli.leftovers() == [log]
    assert "Completing activity as failed" in log.read_text()


def test_the_scenario_list_shows_every_name_and_outcome_in_full_at_80_columns_in_a_pipe(
    cli: Cli,
) -> None:
    listing = json.loads(cli("scenarios", "--json").stdout)["scenarios"]

    result = cli("scenarios", env={"COLUMNS": "80"})

    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    words = result.stdout.split()
    for scenario in listing:
        assert scenario["name"] in words
    assert "COMPENSATED (cancelled_by_customer)" in result.stdout


def test_help_shows_json_as_a_flag_without_a_value(cli: Cli) -> None:
    result = cli("run", "--help", env={"COLUMNS": "80"})

    assert result.returncode == 0
    (line,) = [line for line in result.stdout.splitlines() if "--json" in line]
    assert line.split()[:2] == ["--json", "Print"]
    assert "<bool>" not in result.stdout
