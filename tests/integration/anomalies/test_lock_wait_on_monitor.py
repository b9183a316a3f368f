"""The live monitor shows a saga waiting on the points lock as such, in both styles.

Saga A deducts alice's 100 points and is held before its shipment; saga B of alice wants 100
points too: its answer depends on A's pending points, so it waits. The monitor's saga page for
B says what it waits on; once A ends (its shipment to Antarctica fails, the points come back)
B deducts them and completes, and nothing is shown any more. The monitor attached to the
runtime's servers and stores, as `saga-compare monitor` runs beside a deployment, shows it too.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from choreography.runtime import ChoreographyRuntime
from harness.anomalies.lab import open_lab
from harness.anomalies.scenarios import POLICY, SEED, Setting, order
from harness.anomalies.seams import tried
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.scenarios import ANTARCTICA
from monitor.app import create_app, fixed
from monitor.attach import attached_board
from monitor.security import Guard
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from orchestration.runtime import OrchestrationRuntime
from shared.contracts import SagaStatus, StepName
from shared.countermeasures import Countermeasures
from shared.faults import FaultPlan, Hold, reached, released
from shared.runtime import SagaRuntime
from shared.settings import Settings
from shared.store import sqlite_stores

DEFAULTS = Setting("defaults", Countermeasures())


@pytest.mark.parametrize("variant", ["orchestration", "choreography"])
async def test_a_saga_waiting_on_the_points_lock_is_shown_waiting_on_it(
    tmp_path: Path, variant: str
) -> None:
    data = tmp_path / "data"  # each style's stores where a deployment keeps them
    places = lambda v, name: sqlite_stores(data / v)  # noqa: E731
    async with open_lab(variant, DEFAULTS, places, tmp_path) as lab:
        ns = Namespace("mon")
        await seed_namespace(lab.runtime.domain, ns, SEED)
        a, b = ns.saga_id("A"), ns.saga_id("B")
        held = Hold(step=StepName.CREATE_SHIPMENT, until=released("a-may-ship"))
        first = order("A", "alice", 1, points_to_use=100, shipping_address=ANTARCTICA)
        await lab.driven.start_saga(a, ns.order(first), FaultPlan(holds=[held]), POLICY)
        assert await lab.signals.wait(reached(a, StepName.DEDUCT_POINTS, "after"), 30)
        second = order("B", "alice", 1, points_to_use=100)
        await lab.driven.start_saga(b, ns.order(second), FaultPlan(), POLICY)
        assert await lab.signals.wait(tried(b, StepName.DEDUCT_POINTS), 30)

        board = board_for({variant: lab.runtime}, MonitorSettings(cache_s=0))
        app = create_app(fixed(board), Guard(loopback=True))
        app.state.board = board  # what its lifespan does
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
        ) as http:
            page = await http.get(f"/sagas/{variant}/{b}")
            waiting = await board.saga(variant, b)
            async with attached_board(attach(lab.runtime, data), MonitorSettings()) as watching:
                attached = await watching.saga(variant, b)
            lab.signals.give(released("a-may-ship"))
            ended = await lab.runtime.wait(b, 30)
            after = await board.saga(variant, b)

    shown = f"semantic lock: points of {ns.id('alice')} held by {a}"
    assert waiting is not None and waiting.waiting_on == shown
    assert attached is not None and attached.waiting_on == shown
    assert page.status_code == 200
    assert "waiting on" in page.text and shown in page.text
    assert ended.status is SagaStatus.COMPLETED
    assert after is not None and after.waiting_on is None


def attach(runtime: SagaRuntime, data: Path) -> Settings:
    """What the monitor beside a deployment is given: the style's server and its data dir."""
    if isinstance(runtime, ChoreographyRuntime):
        return Settings(nats_url=runtime.nats_url, data_dir=data)
    assert isinstance(runtime, OrchestrationRuntime)
    address = runtime.client.service_client.config.target_host
    return Settings(temporal_address=address, data_dir=data)
