"""`saga-compare upgrade` on a deployment from `up`: version 2 deployed over version 1's
processes, by a rolling upgrade, with sagas before and after (docs/versioning.md)."""

from __future__ import annotations

import json

import pytest

from harness.deploy import topology
from tests.integration.deploy.deploy_support import deployment, saga_compare

pytestmark = pytest.mark.slow


def test_a_rolling_upgrade_replaces_v1_by_v2_and_both_releases_sagas_hold() -> None:
    with deployment() as found:
        state = str(found.state_dir)
        before = saga_compare("run", "-s", "happy_path", "--attach", state, "--json")
        assert before.returncode == 0, before.stderr

        upgraded = saga_compare(
            "upgrade", "--to", "v2", "--strategy", "rolling", "--arm", "tolerant",
            "--window", "30", "--attach", state,
        )  # fmt: skip
        now = topology.read(found.state_dir)
        after = saga_compare("run", "-s", "happy_path", "--attach", state, "--json")
        checked = saga_compare("check", "--attach", state, "--json")

    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded to v2 by rolling" in upgraded.stdout
    assert now is not None and now.definition == "v2"
    assert {"payment-v2", "fraud-v2", "tracker-v2", "worker-v2"} <= set(now.processes)
    assert not {"payment", "tracker", "worker"} & set(now.processes)
    assert after.returncode == 0, after.stderr
    results = json.loads(after.stdout)["results"]
    assert {r["variant"] for r in results} == {"orchestration", "choreography"}
    assert all("fraud_check" in {s["step"] for s in r["steps"]} for r in results)
    assert checked.returncode == 0, checked.stdout + checked.stderr
