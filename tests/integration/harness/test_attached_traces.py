"""A run attached to a deployment from `up` reports its sagas with the services' spans."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.report.health import trace_health

pytestmark = pytest.mark.slow
COMMAND = Path(sys.executable).parent / "saga-compare"


def saga_compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(COMMAND), *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def state() -> Iterator[Path]:
    """`up` in a fresh state dir, `down` after."""
    folder = Path(tempfile.mkdtemp(prefix="saga-attached-traces-"))
    try:
        started = saga_compare("up", "--state-dir", str(folder))
        assert started.returncode == 0, started.stderr
        yield folder
    finally:
        saga_compare("down", "--state-dir", str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def test_an_attached_run_reads_the_services_spans_and_checks_their_flow(
    state: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report"
    done = saga_compare(
        "run", "--scenario", "shipment_failed", "--attach", str(state), "--report-dir", str(report)
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (state / "traces").iterdir()) == sorted(
        [
            "inventory.jsonl",
            "orders.jsonl",
            "payment.jsonl",
            "points.jsonl",
            "shipping.jsonl",
            "tracker.jsonl",
            "worker.jsonl",
        ]
    )
    health = trace_health(report / "traces.jsonl")
    assert not health.harness_only and health.one_trace_per_saga
    results = json.loads((report / "results.json").read_text())
    assert results["flows_checked"] == 2 and results["drift"] == []
    assert "the deployment in" in results["conditions"]["attached"]
    page = (report / "report.html").read_text()
    assert "These traces hold only the harness's spans" not in page
    assert page.count('<svg class="seq"') >= 2
