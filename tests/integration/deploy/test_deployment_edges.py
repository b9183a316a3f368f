"""The edges of a deployment an operator touches: a run it cannot serve, a saga it lost, two
`up` at once, a store deleted between `down` and `up`, what an attached bench and monitor see.

Each test runs `saga-compare` as a user does. The tests that drive a deployment share the
module's one (`up` and `down` are most of a test's time), started without a fault injector.
Any test runs alone or in any order: each looks at the deployment as it is now and at its own
sagas and runs; one that stops the deployment starts it again as the fixture's `up` did, and
the fixture starts it again when a test left it stopped (`deploy_support.running_again`). The
lock test uses a folder of its own. Interrupted runs and a deployment that dies under a run
are in test_deployment_cut_short.py (a module of its own can run on the other worker).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.compare import scenarios
from harness.deploy import ledger, topology
from harness.deploy.topology import Topology
from tests.integration.deploy.deploy_support import (
    COMMAND,
    deployment,
    running_again,
    saga_compare,
    supervisors,
    wait_for_line,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def plain_deployment() -> Iterator[Topology]:
    """The module's deployment without a fault injector (`up` with no flags)."""
    with deployment() as found:
        yield found


@pytest.fixture
def plain(plain_deployment: Topology) -> Topology:
    """The deployment without an injector, running, as it is now."""
    return running_again(plain_deployment)


def test_a_demo_with_faults_is_refused_by_a_deployment_without_an_injector(
    plain: Topology, tmp_path: Path
) -> None:
    state = str(plain.state_dir)
    before = saga_compare("check", "--attach", state, "--json")
    demo = saga_compare("demo", "--attach", state, "--report-dir", str(tmp_path / "report"))
    after = saga_compare("check", "--attach", state, "--json")

    assert demo.returncode == 2
    errors = demo.stderr.strip().splitlines()
    assert errors[0].startswith("error: the deployment runs no fault injector, and scenario")
    assert "saga-compare up --chaos" in errors[0]
    assert "Traceback" not in demo.stderr
    assert saga_counts(after) == saga_counts(before)  # nothing was started
    assert not (tmp_path / "report").exists()


def saga_counts(checked: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The sagas each variant of a deployment holds, as `check --json` counts them."""
    return {v["variant"]: v["sagas"] for v in json.loads(checked.stdout)["variants"]}


def test_check_reports_a_recorded_saga_the_deployment_does_not_know_as_lost(
    plain: Topology,
) -> None:
    scenario = scenarios.get("happy_path")
    entry = ledger.Entry(
        tag="0badc0de",
        what=scenario.name,
        variants=["choreography", "orchestration"],
        seed=scenario.seed,
        orders=[case.order for case in scenario.sagas],
    )
    ledger.record(plain.state_dir, entry)
    try:
        checked = saga_compare("check", "--attach", str(plain.state_dir), "--json")
    finally:  # the deployment is the next test's too: its ledger holds what really ran
        (ledger.folder_of(plain.state_dir) / f"{entry.tag}.json").unlink()

    assert checked.returncode == 1
    assert "Traceback" not in checked.stderr, checked.stderr
    report = json.loads(checked.stdout)
    lost = {(v["variant"], s["saga_id"]) for v in report["variants"] for s in v["open"]}
    assert lost == {("choreography", "happy-1-0badc0de"), ("orchestration", "happy-1-0badc0de")}
    assert all(s["lost"] for v in report["variants"] for s in v["open"])


def test_an_up_while_another_is_starting_exits_2_naming_its_supervisor() -> None:
    """A supervisor still starting holds the state dir's lock and has written no topology yet.
    That window is held open here by a process that takes the lock and waits (under load a
    real start can be over before a second `up` even looks, which proves nothing)."""
    state = Path(tempfile.mkdtemp(prefix="saga-deploy-test-"))
    state.chmod(0o711)
    starting = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_LOCK, str(state)],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
    )
    try:
        assert starting.stdout is not None and starting.stdout.readline() == "locked\n"
        second = saga_compare("up", "--state-dir", str(state))
        running = supervisors(state)
    finally:
        starting.kill()
        starting.wait(10)
        shutil.rmtree(state, ignore_errors=True)

    assert second.returncode == 2, second.stdout
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {starting.pid}" in lines[0], second.stderr
    assert running == []  # no supervisor was started beside the one starting
    assert not (state / "topology.json").exists()


HOLD_THE_LOCK = """
import sys
from pathlib import Path
from harness.deploy import lock
held = lock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
sys.stdin.read()
"""
"""What a supervisor does first: take the state dir's lock (and hold it while it starts)."""


def test_an_up_after_the_topology_file_was_moved_away_does_not_start_a_second_deployment(
    plain: Topology,
) -> None:
    found = plain
    moved = found.state_dir / "topology.json.moved"
    topology.path_of(found.state_dir).rename(moved)
    try:
        again = saga_compare("up", "--state-dir", str(found.state_dir))
        running = [p.pid for p in supervisors(found.state_dir)]
    finally:
        for process in supervisors(found.state_dir):
            if process.pid != found.supervisor_pid:
                process.terminate()
        moved.rename(topology.path_of(found.state_dir))

    assert again.returncode == 2, again.stdout
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pid {found.supervisor_pid}" in lines[0], again.stderr
    assert running == [found.supervisor_pid]


def test_up_refuses_a_deployment_whose_recorded_store_is_gone_unless_told_to_start_fresh(
    plain: Topology,
) -> None:
    state = str(plain.state_dir)
    ran = saga_compare("run", "-s", "happy_path", "--attach", state)
    saga_compare("down", "--state-dir", state)
    for path in (plain.state_dir / "choreography").glob("payment.db*"):
        path.unlink()
    refused = saga_compare("up", "--state-dir", state)
    fresh = saga_compare("up", "--state-dir", state, "--fresh")  # as the fixture's `up`
    checked = saga_compare("check", "--attach", state, "--json")

    assert ran.returncode == 0, ran.stderr
    assert refused.returncode == 2, refused.stdout
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "choreography/payment.db" in lines[0], refused.stderr
    assert "--fresh" in lines[0]
    assert fresh.returncode == 0, fresh.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and all(v["sagas"] == 0 for v in report["variants"])


def test_an_attached_bench_measures_the_deployments_processes_by_kind(plain: Topology) -> None:
    state = str(plain.state_dir)
    # The calibration starts servers of its own, attached or not (tests/e2e/test_cli.py).
    bench = saga_compare(
        "bench", "--attach", state, "-v", "both", "-n", "8", "-c", "4", "--no-calibrate", "--json"
    )
    opened = saga_compare(
        "bench", "--attach", state, "-v", "choreography", "--rate", "4", "--duration", "3",
        "--no-cold-start", "--no-calibrate", "--json",
    )  # fmt: skip

    assert opened.returncode == 0, opened.stderr
    (run,) = json.loads(opened.stdout)["runs"]
    # Memory over an open run by process: each of the deployment's participants on its own.
    participants = {"orders", "inventory", "payment", "points", "shipping", "tracker"}
    series = {name.removeprefix("memory:") for name in run["timeline"] if ":" in name}
    assert participants | {"harness", "broker"} <= series, series
    assert "services" not in series and participants <= set(run["rss_slope_after_settle"])
    assert bench.returncode == 0, bench.stderr
    runs = json.loads(bench.stdout)["runs"]
    sagas = {run["style"]: run for run in runs if run["kind"] == "saga"}
    # The deployment's own processes, not only the harness: each style's, and its server's.
    assert {"services", "broker"} <= set(sagas["choreography"]["cpu_s"])
    assert {"services", "broker"} <= set(sagas["choreography"]["peak_rss_mb"])
    orchestration = next(s for name, s in sagas.items() if name.startswith("orchestration"))
    assert {"worker", "server"} <= set(orchestration["cpu_s"])
    assert {"worker", "server"} <= set(orchestration["peak_rss_mb"])
    assert "services" not in orchestration["cpu_s"]  # the other style's processes are idle


def test_the_monitor_attached_to_a_deployment_links_each_saga_to_its_temporal_ui(
    plain: Topology,
) -> None:
    found = plain
    state = str(found.state_dir)
    ran = saga_compare(
        "run", "-s", "happy_path", "-v", "orchestration", "--attach", state, "--json"
    )
    assert ran.returncode == 0, ran.stderr
    (result,) = json.loads(ran.stdout)["results"]
    monitor = subprocess.Popen(
        [str(COMMAND), "monitor", "--attach", state, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert monitor.stdout is not None
        url = wait_for_line(monitor.stdout, "monitor: ")[-1].split()[1]
        # The deployment holds the sagas of the tests before too: this one's, by its id.
        (row,) = read_json(f"{url}api/sagas?variant=orchestration&q={result['saga_id']}")["sagas"]
        detail = read_json(f"{url}api/sagas/orchestration/{row['saga_id']}")
    finally:
        monitor.send_signal(signal.SIGINT)
        monitor.communicate(timeout=60)

    assert found.temporal_ui is not None
    assert detail["engine_url"].startswith(f"{found.temporal_ui}/namespaces/default/workflows/")
    assert row["saga_id"] in detail["engine_url"]


def read_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)
