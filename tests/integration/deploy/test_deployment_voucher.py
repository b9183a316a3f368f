"""A saga definition with a step of its own, deployed by `up` on each store and driven attached.

``SAGA_DEFINITION=voucher`` (the order saga plus `apply_voucher` before the pivot, with the
voucher service's own table, compensation and invariant): `up` starts the definition's process
kinds (the voucher service among them), an attached run drives the happy path and a
compensation through the front door, and `check` verifies every invariant, the voucher's too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from choreography.host import kinds_of_process
from harness.deploy.topology import Topology
from shared.definitions import definition_named
from tests.integration.deploy.deploy_support import deployment, saga_compare

pytestmark = pytest.mark.slow

VOUCHER = {"SAGA_DEFINITION": "voucher"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployed(request: pytest.FixtureRequest) -> Iterator[Topology]:
    with deployment("--store", request.param, env=VOUCHER) as found:
        yield found


def test_the_deployment_runs_the_definitions_process_kinds(deployed: Topology) -> None:
    kinds = kinds_of_process(definition_named("voucher"))

    assert deployed.definition == "voucher"
    assert "voucher" in kinds
    assert set(kinds) <= set(deployed.processes)


@pytest.mark.parametrize("scenario", ["happy_path", "shipment_failed"])
def test_an_attached_run_redeems_or_gives_back_the_voucher_in_both_styles(
    deployed: Topology, scenario: str
) -> None:
    state = str(deployed.state_dir)

    ran = saga_compare("run", "-s", scenario, "--attach", state, "--json", env=VOUCHER)
    checked = saga_compare("check", "--attach", state, "--json", env=VOUCHER)

    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert document["equivalent"] and all(document["invariants"].values())
    assert "vouchers_conserved" in document["invariants"]
    assert {saga["variant"] for saga in document["results"]} == {"orchestration", "choreography"}
    for saga in document["results"]:
        done = {step["step"] for step in saga["steps"] if step["status"] == "done"}
        assert "apply_voucher" in done
        assert ("revoke_voucher" in done) is (scenario == "shipment_failed")
    assert checked.returncode == 0, checked.stdout
    report = json.loads(checked.stdout)
    assert report["ok"] and all(not v["open"] for v in report["variants"])
    assert all(not run["violated"] for v in report["variants"] for run in v["runs"])
