"""Runs and deployments cut short: an attached demo interrupted (`check` then counts only the
sagas it placed), a deployment stopped under an attached demo, a Postgres schema dropped while
a deployment was down.

Split from test_deployment_edges.py so the two can run on different workers. The demos share one
deployment started for chaos; the one that stops it leaves it to the next test's fixture to
start again as the module's `up` did (`deploy_support.running_again`), so any test runs alone
or in any order. The Postgres test has a deployment of its own.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from harness.deploy import topology
from harness.deploy.topology import Topology
from tests.integration.deploy.deploy_support import (
    COMMAND,
    deployment,
    running_again,
    saga_compare,
    wait_for_line,
)

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def chaos_deployment() -> Iterator[Topology]:
    """The module's deployment started for chaos (`up --chaos`)."""
    with deployment("--chaos") as found:
        yield found


@pytest.fixture
def chaotic(chaos_deployment: Topology) -> Topology:
    """The deployment started for chaos, running (a test before may have stopped it)."""
    return running_again(chaos_deployment, "--chaos")


def attached_demo(found: Topology, report: Path) -> subprocess.Popen[str]:
    """`demo --attach` on the deployment, progress on a pipe to read."""
    state = str(found.state_dir)
    return subprocess.Popen(
        [str(COMMAND), "demo", "--attach", state, "--repeat", "1", "--report-dir", str(report)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_check_after_an_interrupted_attached_demo_counts_only_the_sagas_it_placed(
    chaotic: Topology, tmp_path: Path
) -> None:
    since = datetime.now().astimezone().isoformat()  # the runs of tests before are not its
    demo = attached_demo(chaotic, tmp_path / "report")
    assert demo.stderr is not None
    wait_for_line(demo.stderr, "done orchestration:")
    demo.send_signal(signal.SIGINT)
    demo.communicate(timeout=120)
    state = str(chaotic.state_dir)
    first = saga_compare("check", "--attach", state, "--json", "--since", since)
    again = saga_compare("check", "--attach", state, "--json", "--since", since)

    assert demo.returncode == 128 + signal.SIGINT
    for checked in (first, again):
        assert "Traceback" not in checked.stderr, checked.stderr
        report = json.loads(checked.stdout)
        variants = {v["variant"]: v for v in report["variants"]}
        # The demo runs the orchestration first: the choreography never placed a saga.
        assert variants["choreography"]["runs"] == []
        assert variants["orchestration"]["runs"] != []
        assert [s for v in report["variants"] for s in v["open"] if s["lost"]] == []


def test_an_attached_demo_whose_deployment_goes_away_ends_in_one_line_and_its_log(
    chaotic: Topology, tmp_path: Path
) -> None:
    found = chaotic
    demo = attached_demo(found, tmp_path / "report")
    assert demo.stderr is not None
    wait_for_line(demo.stderr, "done orchestration:")
    stopped = saga_compare("down", "--state-dir", str(found.state_dir))
    _, rest = demo.communicate(timeout=300)

    assert stopped.returncode == 0
    assert demo.returncode == 1, rest
    assert "Traceback" not in rest
    errors = [line for line in rest.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, rest
    assert f"the deployment in {found.state_dir} went away" in errors[0]
    assert str(found.logs) in errors[0]
    last = rest.strip().splitlines()[-1]
    assert last.startswith("log: ") and Path(last.removeprefix("log: ")).is_file()


def test_up_on_postgres_refuses_a_deployment_whose_recorded_schema_was_dropped() -> None:
    with deployment("--store", "postgres") as found:
        state = str(found.state_dir)
        assert found.postgres_url is not None
        with psycopg.connect(found.postgres_url, autocommit=True) as connection:
            connection.execute("DROP SCHEMA choreography_payment CASCADE")
        saga_compare("down", "--state-dir", state)
        refused = saga_compare("up", "--state-dir", state, "--store", "postgres")
        running_after = topology.read(found.state_dir)

    assert refused.returncode == 2, refused.stdout
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "schema choreography_payment" in lines[0], refused.stderr
    assert running_after is not None and not running_after.supervisor_alive
