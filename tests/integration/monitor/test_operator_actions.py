"""The monitor's operator actions over both real runtimes: the same effect in both styles.

The board calls each runtime's operator protocol (a Temporal update on the open workflow; the
tracker's retry round of command events on NATS, or its recorded resolution). Each action is
recorded on the saga (who, when, what, result) and read back through the style's read model;
the saga leaves the intervention queue, the counters follow it, and the invariants hold.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from harness.compare.invariants import check_invariants
from harness.compare.scenarios import order
from harness.session import VARIANTS, Session, open_session
from monitor.board import Board
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from shared.contracts import OrderRequest, SagaStatus
from shared.definitions import ORDERS_V1
from shared.read_model import ListedStatus, SagaDetail
from shared.runtime import NotAwaitingOperator
from shared.seed import DEFAULT_SEED, seed
from tests.integration.monitor.monitor_sagas import POLICY, stuck

pytestmark = pytest.mark.asyncio(loop_scope="module")


SAGAS = {"ops-retry": stuck(1), "ops-resolve": stuck(1), "ops-again": stuck(2)}
"""A saga to retry (it compensates), one to resolve, one whose retry fails again."""


@dataclass
class Ops:
    session: Session
    board: Board
    orders: dict[str, OrderRequest]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ops(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ops]:
    """Three sagas waiting for an operator on each style (`SAGAS`)."""
    folder = tmp_path_factory.mktemp("operator")
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        orders = {name: order(name) for name in SAGAS}
        for runtime in session.drivers.values():
            await seed(runtime.domain)
            for name, placed in orders.items():
                await runtime.start_saga(f"{name}-1", placed, SAGAS[name], POLICY)
            for name in orders:
                outcome = await runtime.wait(f"{name}-1", 30)
                assert outcome.status is SagaStatus.NEEDS_INTERVENTION
        board = board_for(session.runtimes, MonitorSettings(cache_s=0))
        yield Ops(session, board, orders)


async def detail(board: Board, variant: str, saga_id: str) -> SagaDetail:
    found = await board.saga(variant, saga_id)
    assert found is not None
    return found


async def queued(board: Board, variant: str, timeout_s: float = 20) -> set[str]:
    """The style's intervention queue, once visibility agrees with the saga (it lags a bit)."""
    deadline = time.monotonic() + timeout_s
    model = board.models[variant]
    while True:
        ids = {i.row.saga_id for i in await model.interventions()}
        waiting = set()
        for saga_id in (f"{name}-1" for name in SAGAS):
            if (await detail(board, variant, saga_id)).waiting:
                waiting.add(saga_id)
        if ids == waiting or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.1)


async def invariants_hold(ops: Ops, variant: str) -> None:
    runtime = ops.session.runtimes[variant]
    state = await runtime.domain.snapshot()
    sagas = [(o, await runtime.describe(f"{name}-1")) for name, o in ops.orders.items()]
    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, state, sagas)
    assert checks == dict.fromkeys(checks, True)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_both_sagas_wait_in_the_queue_and_count_as_needing_intervention(
    ops: Ops, variant: str
) -> None:
    assert await queued(ops.board, variant) == {"ops-retry-1", "ops-resolve-1", "ops-again-1"}
    counters = await ops.board.models[variant].counters(time.time())
    assert counters.ended_last_minute.get(ListedStatus.NEEDS_INTERVENTION) == 3
    assert counters.in_flight == 0
    await invariants_hold(ops, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_retry_compensation_compensates_the_saga_and_is_recorded(
    ops: Ops, variant: str
) -> None:
    before = time.time()
    await ops.board.retry_compensation(variant, "ops-retry-1", "ops-anna")

    saga = await detail(ops.board, variant, "ops-retry-1")
    assert saga.row.status is ListedStatus.COMPENSATED
    assert not saga.waiting
    assert [(a.action, a.who, a.result) for a in saga.actions] == [
        ("retry_compensation", "ops-anna", "compensated")
    ]
    assert before <= saga.actions[0].at <= time.time()
    assert await queued(ops.board, variant) == {"ops-resolve-1", "ops-again-1"}
    await invariants_hold(ops, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_resolve_records_the_note_and_leaves_the_queue(ops: Ops, variant: str) -> None:
    await ops.board.resolve(variant, "ops-resolve-1", "ops-bo", "refunded by bank transfer")

    saga = await detail(ops.board, variant, "ops-resolve-1")
    assert saga.row.status is ListedStatus.NEEDS_INTERVENTION  # its outcome stays what it was
    assert not saga.waiting
    assert [(a.action, a.who, a.result, a.note) for a in saga.actions] == [
        ("resolve", "ops-bo", "resolved", "refunded by bank transfer")
    ]
    assert await queued(ops.board, variant) == {"ops-again-1"}
    await invariants_hold(ops, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_retry_that_fails_again_keeps_the_saga_waiting_since_it_first_did(
    ops: Ops, variant: str
) -> None:
    model = ops.board.models[variant]
    since = {i.row.saga_id: i.since for i in await model.interventions()}["ops-again-1"]

    await ops.board.retry_compensation(variant, "ops-again-1", "ops-anna")

    saga = await detail(ops.board, variant, "ops-again-1")
    assert (saga.row.status, saga.waiting) == (ListedStatus.NEEDS_INTERVENTION, True)
    assert [(a.action, a.result) for a in saga.actions] == [("retry_compensation", "still_failing")]
    assert await queued(ops.board, variant) == {"ops-again-1"}
    queue = {i.row.saga_id: i.since for i in await model.interventions()}
    assert queue["ops-again-1"] == pytest.approx(since, abs=0.001)
    await invariants_hold(ops, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_second_action_on_a_saga_that_no_longer_waits_is_refused(
    ops: Ops, variant: str
) -> None:
    for saga_id in ("ops-retry-1", "ops-resolve-1"):
        with pytest.raises(NotAwaitingOperator):
            await ops.board.resolve(variant, saga_id, "ops-cy", "again")
        assert len((await detail(ops.board, variant, saga_id)).actions) == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_counters_follow_the_actions(ops: Ops, variant: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        counters = await ops.board.models[variant].counters(time.time())
        per_minute = counters.ended_last_minute
        expected = {ListedStatus.COMPENSATED: 1, ListedStatus.NEEDS_INTERVENTION: 2}
        if per_minute == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    # The retried saga counts as COMPENSATED (when the retry compensated it); the resolved one
    # and the one still waiting stay NEEDS_INTERVENTION, counted when they got there.
    assert per_minute == expected
    assert len(counters.latencies_s) == 3
