"""A deployment from `saga-compare up`: supervised processes, the front door, check, chaos, down.

One deployment (SQLite stores) serves the whole module. Any test runs alone or in any order:
each reads the deployment as it is now (`latest`), starts the sagas it looks at, and the one
that stops it brings it back as `up` first started it. Each chaos test kills one process kind
once under a small load (harness/chaos/experiment.py with a fixed rate and no fault-free run)
and asks that every saga ended, nothing was lost, duplicated or double charged and every
invariant held.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from choreography.host import kinds_of_process
from harness.chaos.analysis import VariantReport
from harness.chaos.experiment import ChaosOptions, run_chaos
from harness.deploy import control, topology
from harness.deploy.topology import Topology
from shared.definitions import ORDERS_V1
from shared.telemetry import HARNESS, configure_tracing
from tests.integration.deploy.deploy_support import (
    COMMAND,
    deployment,
    every_pid,
    running,
    saga_compare,
)

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ORDERS = 30
RATE = 10.0


@pytest.fixture(scope="module")
def deployed() -> Iterator[Topology]:
    with deployment("--chaos") as found:
        yield found


def latest(found: Topology) -> Topology:
    current = topology.read(found.state_dir)
    assert current is not None
    return current


async def chaos_once(found: Topology, kind: str, variant: str) -> VariantReport:
    options = ChaosOptions(
        variants=[variant],
        orders=ORDERS,
        kinds=[kind],
        seed=11,
        rate=RATE,
        downtime=(1.0, 1.5),
        bound_s=90.0,
        baseline=False,
    )
    document = await run_chaos(options, found, configure_tracing(HARNESS), lambda line: None)
    (report,) = document.variants
    return report


async def test_up_supervises_every_process_kind_and_a_second_up_finds_it_running(
    deployed: Topology,
) -> None:
    current = latest(deployed)
    again = saga_compare("up", "--state-dir", str(deployed.state_dir), "--chaos")
    other = saga_compare("up", "--state-dir", str(deployed.state_dir))

    kinds = kinds_of_process(ORDERS_V1)
    assert set(current.processes) == {*kinds, "worker", "nats", "temporal"}
    assert running(every_pid(current)) == ["supervisor", *current.processes]
    assert again.returncode == 0 and "already up" in again.stdout
    assert current.nats_url in again.stdout and str(current.temporal_ui) in again.stdout
    assert latest(deployed).supervisor_pid == current.supervisor_pid
    # The same state dir without --chaos would be another deployment on the same stores.
    assert other.returncode == 2
    assert other.stderr.startswith("error: a deployment started with --chaos is running in")


async def test_a_process_killed_from_outside_is_restarted_by_its_supervisor(
    deployed: Topology,
) -> None:
    before = latest(deployed).processes["points"]
    assert before.pid is not None
    os.kill(before.pid, signal.SIGKILL)

    answer = await control.request(
        latest(deployed).control, "wait_ready", kind="points", timeout_s=60, not_pid=before.pid
    )

    assert answer["pid"] != before.pid and answer["restarts"] >= 1
    after = latest(deployed).processes["points"]
    assert after.pid is not None and after.pid == answer["pid"]
    assert running({"points": (after.pid, after.started)})


async def test_an_attached_run_starts_no_worker_and_leaves_its_sagas_to_check(
    deployed: Topology,
) -> None:
    state = str(deployed.state_dir)
    harness = subprocess.Popen(
        [str(COMMAND), "run", "-s", "shipment_failed", "--attach", state, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = harness.communicate(timeout=300)
    checked = saga_compare("check", "--attach", state, "--json")

    assert harness.returncode == 0, err
    assert json.loads(out)["equivalent"]
    pollers = await task_queue_pollers(deployed)
    assert harness.pid not in pollers
    assert latest(deployed).processes["worker"].pid in pollers
    report = json.loads(checked.stdout)
    assert checked.returncode == 0 and report["ok"]
    assert all(v["sagas"] >= 1 and not v["open"] for v in report["variants"])


async def test_an_attached_bench_measures_the_deployments_styles_against_floors_on_its_servers(
    deployed: Topology,
) -> None:
    state = str(deployed.state_dir)
    # The calibration starts servers of its own, attached or not (tests/e2e/test_cli.py).
    bench = saga_compare(
        "bench", "--attach", state, "-v", "choreography", "-n", "8", "-c", "4", "--no-calibrate",
        "--json",
    )  # fmt: skip

    assert bench.returncode == 0, bench.stderr
    document = json.loads(bench.stdout)
    kinds = {(run["style"], run["kind"]) for run in document["runs"]}
    assert kinds == {("choreography", "floor"), ("choreography", "saga")}  # no durable floor
    assert all(run["completed"] == 8 for run in document["runs"])
    assert document["cold_start"] == {}


async def test_the_monitor_attached_to_the_deployment_sees_both_styles_sagas(
    deployed: Topology,
) -> None:
    ran = saga_compare("run", "-s", "happy_path", "--attach", str(deployed.state_dir))
    assert ran.returncode == 0, ran.stderr
    monitor = subprocess.Popen(
        [str(COMMAND), "monitor", "--attach", str(deployed.state_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert monitor.stdout is not None
        announced = await asyncio.wait_for(asyncio.to_thread(monitor.stdout.readline), 60)
        url = announced.split("monitor: ", 1)[1].split()[0]
        overview = await asyncio.to_thread(read_json, url + "api/overview")
    finally:
        monitor.send_signal(signal.SIGTERM)
        code = monitor.wait(30)

    ended = {c["variant"]: sum(c["per_minute"].values()) for c in overview["counters"]}
    assert overview["errors"] == {}
    assert ended["choreography"] >= 1 and ended["orchestration"] >= 1
    assert code in (0, 128 + signal.SIGTERM)


def read_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


async def task_queue_pollers(found: Topology) -> set[int]:
    """The pids of the processes polling the deployment's workflow task queue."""
    settings = found.settings("orchestration")
    client = await Client.connect(found.temporal_address)
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=settings.temporal_namespace,
            task_queue=TaskQueue(name=settings.temporal_task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        timeout=timedelta(seconds=10),
    )
    return {int(poller.identity.split("@")[0]) for poller in response.pollers}


async def test_check_lists_a_saga_that_is_not_terminal_until_it_ends(
    deployed: Topology,
) -> None:
    state = str(deployed.state_dir)
    supervisor = latest(deployed).control
    await control.request(supervisor, "kill", kind="shipping", down_s=600)
    stuck = saga_compare(
        "run", "-s", "happy_path", "-v", "choreography", "--attach", state, "--timeout", "3"
    )
    failing = saga_compare("check", "--attach", state, "--json", "--since", "10m")
    await control.request(supervisor, "release", kind="shipping")
    await control.request(supervisor, "wait_ready", kind="shipping", timeout_s=60)
    passing = saga_compare("check", "--attach", state, "--since", "10m")

    assert stuck.returncode == 1 and "stuck in create_shipment" in stuck.stderr
    assert failing.returncode == 1
    variants = {v["variant"]: v for v in json.loads(failing.stdout)["variants"]}
    (open_saga,) = variants["choreography"]["open"]
    assert open_saga["saga_id"].startswith("happy-1-")
    # Until the scenario's 20 s deadline the saga waits in create_shipment; on a loaded machine
    # the check may start after it, and the saga is then compensating, still open (listed).
    assert open_saga["stuck_in"] in ("create_shipment", *ORDERS_V1.spec.compensations)
    assert passing.returncode == 0, passing.stdout


@pytest.mark.parametrize("kind", [*kinds_of_process(ORDERS_V1), "nats"])
async def test_killing_a_choreography_process_kind_under_load_loses_nothing(
    deployed: Topology, kind: str
) -> None:
    report = await chaos_once(latest(deployed), kind, "choreography")

    (kill,) = report.kills
    assert (kill.target, kill.pid is not None, kill.back_s is not None) == (kind, True, True)
    assert report.restarts[kind] >= 1
    assert (report.terminal, report.submitted) == (ORDERS, ORDERS)
    assert report.failures == []


@pytest.mark.parametrize("kind", ["worker", "temporal"])
async def test_killing_an_orchestration_process_kind_under_load_loses_nothing(
    deployed: Topology, kind: str
) -> None:
    report = await chaos_once(latest(deployed), kind, "orchestration")

    (kill,) = report.kills
    assert (kill.target, kill.pid is not None, kill.back_s is not None) == (kind, True, True)
    assert report.restarts[kind] >= 1
    assert (report.terminal, report.submitted) == (ORDERS, ORDERS)
    assert report.failures == []


async def test_down_leaves_nothing_running_and_the_next_up_has_the_same_state(
    deployed: Topology,
) -> None:
    state = str(deployed.state_dir)
    before = json.loads(saga_compare("check", "--attach", state, "--json").stdout)
    pids = every_pid(latest(deployed))

    stopped = saga_compare("down", "--state-dir", state)
    left = running(pids)
    restarted = saga_compare("up", "--state-dir", state, "--chaos")  # as the fixture's `up`
    after = json.loads(saga_compare("check", "--attach", state, "--json").stdout)

    assert stopped.returncode == 0 and left == []
    assert restarted.returncode == 0
    assert latest(deployed).ports == deployed.ports
    counts = {v["variant"]: (v["sagas"], len(v["runs"])) for v in before["variants"]}
    assert {v["variant"]: (v["sagas"], len(v["runs"])) for v in after["variants"]} == counts
    assert after["ok"]
