"""`saga-compare anomalies` as a user runs it: the matrix printed, the report written, exits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli


def test_the_matrix_with_countermeasures_off_and_on_is_printed_and_exits_zero(cli: Cli) -> None:
    done = cli("anomalies", "--anomaly", "fuzzy_read", "--countermeasures", "both")

    assert done.returncode == 0, done.stderr
    lines = [" ".join(line.split()) for line in done.stdout.splitlines()]
    assert "3 fuzzy_read by_value off observed A observed A" in lines
    assert "3 fuzzy_read by_value on prevented prevented" in lines
    assert "3 fuzzy_read reread_value on prevented prevented" in lines
    assert lines[-1] == "as expected"
    log = Path(done.stderr.strip().splitlines()[-1].removeprefix("log: "))
    assert cli.leftovers() == [log]


def test_the_json_document_and_the_report_link_each_cell_to_its_swimlanes(cli: Cli) -> None:
    report = cli.cwd / "lab"
    done = cli(
        "anomalies",
        "--anomaly",
        "early_compensation",
        "--variant",
        "choreography",
        "--stress",
        "20",
        "--countermeasures",
        "off",
        "--json",
        "--report-dir",
        str(report),
    )

    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ok"] is True
    (cell,) = doc["matrix"]
    assert (cell["verdict"], cell["involved"]) == ("observed", ["A"])
    (stressed,) = doc["stress"]
    assert (stressed["setting"], stressed["sagas"], stressed["disagreements"]) == ("off", 20, 0)
    page = (report / "anomalies.html").read_text(encoding="utf-8")
    anchor = "cell-early-compensation-version-file-off-choreography"
    assert f'href="#{anchor}"' in page and f'id="{anchor}"' in page
    assert page.count("<svg") == 1  # the one saga's swimlanes
    assert f"(anomalies.html#{anchor})" in (report / "anomalies.md").read_text(encoding="utf-8")
    history = report / "histories" / f"{anchor.removeprefix('cell-')}.jsonl"
    kinds = {json.loads(line)["kind"] for line in history.read_text().splitlines()}
    assert {"start", "fence", "step", "write", "end"} <= kinds
    assert json.loads((report / "anomalies.json").read_text())["ok"] is True


def test_an_unknown_anomaly_is_one_line_exit_two_and_nothing_left_behind(cli: Cli) -> None:
    done = cli("anomalies", "--anomaly", "phantom_read", "--report-dir", str(cli.cwd / "r"))

    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --anomaly 'phantom_read': no such anomaly; use one of: lost_update, dirty_read,"
        " fuzzy_read, cancel_overwritten, early_compensation, all"
    ]
    assert done.stdout == ""
    assert cli.leftovers() == []


def test_a_stress_size_past_its_ceiling_is_a_usage_error(cli: Cli) -> None:
    done = cli("anomalies", "--stress", "10001")

    assert done.returncode == 2
    assert "--stress': Input should be less than or equal to 10000" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert cli.leftovers() == []
