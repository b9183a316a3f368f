"""A deployment whose stores are on Postgres: Postgres itself killed under load, both variants."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.chaos.experiment import ChaosOptions, run_chaos
from harness.deploy.topology import Topology
from shared.settings import StoreKind
from shared.telemetry import HARNESS, configure_tracing
from tests.integration.deploy.deploy_support import deployment

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ORDERS = 30


@pytest.fixture(scope="module")
def deployed() -> Iterator[Topology]:
    with deployment("--store", "postgres", "--chaos") as found:
        yield found


async def test_killing_postgres_under_load_loses_nothing_in_either_variant(
    deployed: Topology,
) -> None:
    options = ChaosOptions(
        variants=["choreography", "orchestration"],
        orders=ORDERS,
        kinds=["postgres"],
        seed=5,
        rate=8.0,
        downtime=(1.0, 1.5),
        bound_s=120.0,
        baseline=False,
    )

    document = await run_chaos(options, deployed, configure_tracing(HARNESS), lambda line: None)

    assert deployed.store is StoreKind.POSTGRES
    assert [kill.targets for kill in document.schedule] == [
        {"choreography": "postgres", "orchestration": "postgres"}
    ]
    for report in document.variants:
        (kill,) = report.kills
        assert kill.pid is not None and kill.back_s is not None
        assert (report.terminal, report.submitted) == (ORDERS, ORDERS), report.variant
        assert report.failures == [], report.variant
