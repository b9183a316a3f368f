"""`saga-compare versioning` and `saga-compare upgrade` as a user runs them.

The matrix runs in full on SQLite with one saga per position: every cell's outcome that does
not depend on which process of a rolling upgrade takes a message is asserted (docs/
versioning.md explains each arm); what depends on it is only required to have run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.versioning.observe import STUCK

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

POSITIONS = 7


def cells(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each style's result by (arm, strategy)."""
    found = {}
    for item in doc["cells"]:
        for result in item["cell"]["variants"]:
            found[result["arm"], item["cell"]["strategy"]] = result
    return found


def test_the_versioning_matrix_runs_on_sqlite_and_each_arm_does_what_it_says(
    cli: Cli, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    args = ["versioning", "--store", "sqlite", "-n", "1", "--quiet", "10", "--window", "30"]
    result = cli(*args, "--report-dir", str(report), "--json", timeout=1800)

    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    found = cells(doc)
    assert len(found) == 16  # 8 arms x 2 strategies
    for (arm, strategy), cell in found.items():
        assert len(cell["sagas"]) == POSITIONS, (arm, strategy)
        assert cell["invariants_violated"] == [], (arm, strategy)
        assert all(f["right"] for f in cell["fresh"]), (arm, strategy, cell["fresh"])
    for arm in ("patched", "auto-upgrade", "stored-upcast"):
        for strategy in ("swap", "rolling"):
            cell = found[arm, strategy]
            assert cell["right"] == POSITIONS and cell["misrecorded"] == 0, (arm, strategy)
    for strategy in ("swap", "rolling"):
        tolerant = found["tolerant", strategy]
        assert tolerant["right"] == POSITIONS and tolerant["misrecorded"] == POSITIONS
        assert found["pinned", "rolling"]["right"] == POSITIONS
        assert found["dual-publish", "rolling"]["right"] == POSITIONS
    assert found["none", "swap"]["stuck"] == {"non-determinism error": POSITIONS - 1}
    assert found["strict", "swap"]["stuck"] == {"events dead-lettered": POSITIONS}
    assert found["strict", "swap"]["dead_letters"] >= POSITIONS
    assert found["pinned", "swap"]["stuck"] == {"no worker of its version": POSITIONS}
    unread = {"events in a consumer group nobody reads": POSITIONS}
    assert found["dual-publish", "swap"]["stuck"] == unread
    assert found["dual-publish", "swap"]["dead_letters"] == 0
    for arm in ("none", "strict", "pinned", "dual-publish"):
        # v1 gone, each stuck saga's cause is for good: the watch ends on it, not on --quiet
        assert found[arm, "swap"]["watch_ended"] == [STUCK], arm
    page = (report / "versioning.html").read_text(encoding="utf-8")
    assert "lanes/sqlite-patched-tolerant-swap/report.html" in page
    assert (report / "lanes" / "sqlite-patched-tolerant-swap" / "report.html").is_file()
    assert json.loads((report / "versioning.json").read_text())["cells"] == doc["cells"]


def test_upgrade_without_a_deployment_is_one_line_naming_up(cli: Cli, tmp_path: Path) -> None:
    result = cli("upgrade", "--to", "v2", "--strategy", "swap", "--attach", str(tmp_path))
    cli.assert_one_line_error(result, "no deployment is running", "saga-compare up")


def test_upgrade_to_an_unknown_definition_is_one_line_naming_the_choices(cli: Cli) -> None:
    result = cli("upgrade", "--to", "v9", "--strategy", "swap")
    cli.assert_one_line_error(result, "--to 'v9'", "v1, v2, voucher")


def test_upgrade_with_an_unknown_arm_is_one_line_naming_the_arms(cli: Cli) -> None:
    result = cli("upgrade", "--to", "v2", "--strategy", "rolling", "--arm", "yolo")
    cli.assert_one_line_error(result, "--arm 'yolo'", "pinned", "stored-upcast")
