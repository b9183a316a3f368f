"""What the monitor says at the edges, through its HTTP API over both styles running for real.

Both styles run embedded (real servers) with the monitor served beside them, as `saga-compare
demo --monitor` does; each test starts its sagas on both and reads `/api/...` as a page does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio

from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.runner import new_run_tag, run_saga
from harness.compare.scenarios import SagaCase, order
from harness.session import VARIANTS, Session, open_session
from monitor.app import create_app, fixed
from monitor.security import Guard
from monitor.serve import serving
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from orchestration.runtime import OrchestrationRuntime
from orchestration.visibility import given_order_filter
from shared.contracts import SagaPolicy, StepName
from shared.faults import FaultPlan, FaultRule
from shared.seed import DEFAULT_SEED, seed

pytestmark = pytest.mark.asyncio(loop_scope="module")

HANGS = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, hang=True)])
SETTINGS = MonitorSettings(stuck_after_s=600, deadline_warning_s=30, cache_s=0)


@dataclass
class Monitored:
    session: Session
    http: httpx.AsyncClient

    async def start(self, saga_id: str, faults: FaultPlan, policy: SagaPolicy) -> None:
        """The same saga on both styles (same saga id, same order)."""
        for runtime in self.session.drivers.values():
            await runtime.start_saga(saga_id, order(saga_id.rsplit("-", 1)[0]), faults, policy)

    async def settled(self, saga_id: str) -> None:
        for runtime in self.session.runtimes.values():
            await runtime.wait(saga_id, 60)

    async def get(self, path: str) -> Any:
        answer = await self.http.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def monitored(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Monitored]:
    folder = tmp_path_factory.mktemp("monitor-edges")
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        for runtime in session.runtimes.values():
            await seed(runtime.domain)
        board = board_for(session.runtimes, SETTINGS)
        async with (
            serving(create_app(fixed(board), Guard(loopback=True))) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            yield Monitored(session, http)


def step_of(detail: dict[str, Any], name: str, phase: str = "forward") -> dict[str, Any]:
    (found,) = [s for s in detail["steps"] if s["step"] == name and s["phase"] == phase]
    return dict(found)


async def test_a_step_that_hung_until_the_deadline_shows_how_long_it_hung_in_both_styles(
    monitored: Monitored,
) -> None:
    policy = SagaPolicy(
        deadline_s=3.0, attempt_timeout_s=0.5, initial_backoff_s=0.05, max_backoff_s=0.2
    )
    await monitored.start("hung-1", HANGS, policy)
    await monitored.settled("hung-1")

    for variant in VARIANTS:
        detail = await monitored.get(f"/api/sagas/{variant}/hung-1")
        charge = step_of(detail, "charge_payment")
        reserve = step_of(detail, "reserve_inventory")
        took = charge["ended_at"] - charge["started_at"]
        # It was asked for once the reservation was done, and hung until the deadline's cancel.
        assert charge["started_at"] == pytest.approx(reserve["ended_at"], abs=0.5), variant
        assert took >= policy.deadline_s - 1.0, (variant, took)
        assert charge["attempts"] > 1, variant


async def test_a_saga_whose_deadline_is_within_the_warning_is_listed_at_once_in_both_styles(
    monitored: Monitored,
) -> None:
    policy = SagaPolicy(deadline_s=20.0, attempt_timeout_s=60.0)
    started = time.time()
    await monitored.start("near-1", HANGS, policy)

    overview = await monitored.get("/api/overview")
    while not all(v in _alerted(overview, "near-1") for v in VARIANTS):
        assert time.time() - started < 10, overview["alerts"]  # well before the deadline
        await asyncio.sleep(0.1)
        overview = await monitored.get("/api/overview")

    for variant in VARIANTS:
        assert _alerted(overview, "near-1")[variant] == ["deadline_near"]


def _alerted(overview: dict[str, Any], saga_id: str) -> dict[str, list[str]]:
    return {
        a["row"]["variant"]: a["kinds"]
        for a in overview["alerts"]
        if a["row"]["saga_id"] == saga_id
    }


async def test_an_order_a_run_placed_under_its_tag_is_found_by_the_id_it_was_given(
    monitored: Monitored,
) -> None:
    namespace = Namespace(new_run_tag())
    case = SagaCase(order("given-1"))
    held = namespace.saga_id("given-1")  # the order id the services hold, and the saga id
    for runtime in monitored.session.drivers.values():
        await seed_namespace(runtime.domain, namespace, DEFAULT_SEED)
        await run_saga(runtime, case, SagaPolicy(), held, 30, namespace=namespace)

    async def listed() -> set[tuple[str, str, str]]:
        rows = (await monitored.get("/api/sagas?q=given-1"))["sagas"]
        return {(r["variant"], r["saga_id"], r["order_id"]) for r in rows}

    expected = {(variant, held, held) for variant in VARIANTS}
    started = time.time()
    while await listed() != expected:
        assert time.time() - started < 20, await listed()  # visibility lags a little
        await asyncio.sleep(0.1)
    page = await monitored.http.get("/orders/given-1")
    temporal = monitored.session.runtimes["orchestration"]
    assert isinstance(temporal, OrchestrationRuntime)
    found = await temporal.client.count_workflows(given_order_filter("given-1"))

    assert page.status_code == 200, page.text
    for variant in VARIANTS:
        assert f'href="/sagas/{variant}/{held}"' in page.text
    assert found.count == 1
