"""The monitor's operator actions over both real runtimes: the same effect in both styles.

The board calls each runtime's operator protocol (a Temporal update on the open workflow; the
tracker's retry round of command events on NATS, or its recorded resolution). Each action is
recorded on the saga (who, when, what, result) and read back through the style's read model;
the saga leaves the intervention queue, the counters follow it, and the invariants hold.

The servers, runtimes and board are the module's, and so are the sagas it starts at once in
both styles (`SAGAS`); each saga belongs to one test, which alone acts on it, and a test reads
the queue and the counters for its own sagas only, so any test runs alone or in any order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

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
from shared.faults import FaultPlan
from shared.read_model import LATENCY_WINDOW_S, ListedStatus, ReadModel, SagaDetail
from shared.runtime import NotAwaitingOperator
from shared.seed import DEFAULT_SEED, seed
from tests.integration.monitor.monitor_sagas import POLICY, stuck

pytestmark = pytest.mark.asyncio(loop_scope="module")

SAGAS = {
    # test_a_retry_that_compensates_is_recorded_and_ends_the_wait
    "retried": stuck(1),
    # test_resolve_records_the_note_and_ends_the_wait
    "resolved": stuck(1),
    # test_a_retry_that_fails_again_keeps_the_saga_waiting_since_it_first_did
    "failing": stuck(2),
}
"""The sagas waiting for an operator before the tests begin, by the test that acts on them (the
test that counts what settles starts its own)."""


@dataclass
class Ops:
    session: Session
    board: Board
    orders: dict[str, dict[str, OrderRequest]] = field(default_factory=dict)
    """Every saga started on each style so far: the invariants are checked over all of them."""

    async def waiting(self, variant: str, plans: Mapping[str, FaultPlan]) -> set[str]:
        """Start these sagas (id: faults) on one style, together; return their ids once each
        waits for an operator."""
        runtime = self.session.driven(variant)
        for saga_id, plan in plans.items():
            placed = order(saga_id)
            self.orders.setdefault(variant, {})[saga_id] = placed
            await runtime.start_saga(saga_id, placed, plan, POLICY)
        for saga_id in plans:
            outcome = await runtime.wait(saga_id, 30)
            assert outcome.status is SagaStatus.NEEDS_INTERVENTION
        return set(plans)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ops(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ops]:
    """Both styles' runtimes, seeded, with the `SAGAS` waiting, and the board over them."""
    folder = tmp_path_factory.mktemp("operator")
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        for runtime in session.drivers.values():
            await seed(runtime.domain)
        ops = Ops(session, board_for(session.runtimes, MonitorSettings(cache_s=0)))
        await asyncio.gather(*(ops.waiting(variant, SAGAS) for variant in VARIANTS))
        yield ops


async def detail(board: Board, variant: str, saga_id: str) -> SagaDetail:
    found = await board.saga(variant, saga_id)
    assert found is not None
    return found


async def queued(board: Board, variant: str, sagas: set[str], timeout_s: float = 20) -> set[str]:
    """Which of ``sagas`` the style's intervention queue lists, once visibility agrees with the
    sagas themselves (it lags a bit)."""
    deadline = time.monotonic() + timeout_s
    model = board.models[variant]
    while True:
        ids = {i.row.saga_id for i in await model.interventions()} & sagas
        waiting = {saga_id for saga_id in sagas if (await detail(board, variant, saga_id)).waiting}
        if ids == waiting or time.monotonic() > deadline:
            return ids
        await asyncio.sleep(0.1)


async def ended_since(
    model: ReadModel, began: float, expected: dict[ListedStatus, int], timeout_s: float = 20
) -> tuple[dict[ListedStatus, int], int]:
    """The sagas that reached a status since ``began``, by status, once they are ``expected``
    (visibility lags a bit), and how many latencies the counters hold for them.

    Each of the counters' windows reaches back a fixed length from ``now`` and has no upper
    end, so a ``now`` of ``began`` plus that length asks for exactly what settled since
    ``began``: this test's sagas (every other test's had settled before it began).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        counted = (await model.counters(began + 60.0)).ended_last_minute
        if counted == expected or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    latencies = (await model.counters(began + LATENCY_WINDOW_S)).latencies_s
    return counted, len(latencies)


async def invariants_hold(ops: Ops, variant: str) -> None:
    runtime = ops.session.runtimes[variant]
    state = await runtime.domain.snapshot()
    orders = ops.orders[variant]
    sagas = [(placed, await runtime.describe(saga_id)) for saga_id, placed in orders.items()]
    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, state, sagas)
    assert checks == dict.fromkeys(checks, True)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_retry_that_compensates_is_recorded_and_ends_the_wait(
    ops: Ops, variant: str
) -> None:
    sagas = {"retried"}
    assert await queued(ops.board, variant, sagas) == sagas
    before = time.time()

    await ops.board.retry_compensation(variant, "retried", "ops-anna")

    saga = await detail(ops.board, variant, "retried")
    assert saga.row.status is ListedStatus.COMPENSATED
    assert not saga.waiting
    assert [(a.action, a.who, a.result) for a in saga.actions] == [
        ("retry_compensation", "ops-anna", "compensated")
    ]
    assert before <= saga.actions[0].at <= time.time()
    assert await queued(ops.board, variant, sagas) == set()
    await invariants_hold(ops, variant)
    # A second action on a saga that no longer waits is refused, and not recorded.
    with pytest.raises(NotAwaitingOperator):
        await ops.board.resolve(variant, "retried", "ops-cy", "again")
    assert len((await detail(ops.board, variant, "retried")).actions) == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_resolve_records_the_note_and_ends_the_wait(ops: Ops, variant: str) -> None:
    sagas = {"resolved"}
    assert await queued(ops.board, variant, sagas) == sagas

    await ops.board.resolve(variant, "resolved", "ops-bo", "refunded by bank transfer")

    saga = await detail(ops.board, variant, "resolved")
    assert saga.row.status is ListedStatus.NEEDS_INTERVENTION  # its outcome stays what it was
    assert not saga.waiting
    assert [(a.action, a.who, a.result, a.note) for a in saga.actions] == [
        ("resolve", "ops-bo", "resolved", "refunded by bank transfer")
    ]
    assert await queued(ops.board, variant, sagas) == set()
    await invariants_hold(ops, variant)
    # A second action on a saga that no longer waits is refused, and not recorded.
    with pytest.raises(NotAwaitingOperator):
        await ops.board.resolve(variant, "resolved", "ops-cy", "again")
    assert len((await detail(ops.board, variant, "resolved")).actions) == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_retry_that_fails_again_keeps_the_saga_waiting_since_it_first_did(
    ops: Ops, variant: str
) -> None:
    sagas = {"failing"}
    model = ops.board.models[variant]
    assert await queued(ops.board, variant, sagas) == sagas
    since = {i.row.saga_id: i.since for i in await model.interventions()}["failing"]

    await ops.board.retry_compensation(variant, "failing", "ops-anna")

    saga = await detail(ops.board, variant, "failing")
    assert (saga.row.status, saga.waiting) == (ListedStatus.NEEDS_INTERVENTION, True)
    assert [(a.action, a.result) for a in saga.actions] == [("retry_compensation", "still_failing")]
    assert await queued(ops.board, variant, sagas) == {"failing"}
    queue = {i.row.saga_id: i.since for i in await model.interventions()}
    assert queue["failing"] == pytest.approx(since, abs=0.001)
    await invariants_hold(ops, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_the_queue_and_the_counters_follow_the_actions(ops: Ops, variant: str) -> None:
    model = ops.board.models[variant]
    began = time.time()
    sagas = await ops.waiting(
        variant,
        {"counted-retried": stuck(1), "counted-resolved": stuck(1), "counted-again": stuck(2)},
    )

    # All three wait in the queue and count as NEEDS_INTERVENTION; none is in flight.
    assert await queued(ops.board, variant, sagas) == sagas
    waiting = {ListedStatus.NEEDS_INTERVENTION: 3}
    assert await ended_since(model, began, waiting) == (waiting, 3)
    assert (await model.counters(time.time())).in_flight == 0
    await invariants_hold(ops, variant)

    await asyncio.gather(
        ops.board.retry_compensation(variant, "counted-retried", "ops-anna"),
        ops.board.resolve(variant, "counted-resolved", "ops-bo", "refunded by bank transfer"),
        ops.board.retry_compensation(variant, "counted-again", "ops-anna"),
    )

    # Only the saga whose retry failed again still waits. The retried saga counts as
    # COMPENSATED (when the retry compensated it); the resolved one and the one still waiting
    # stay NEEDS_INTERVENTION, counted when they got there.
    assert await queued(ops.board, variant, sagas) == {"counted-again"}
    acted = {ListedStatus.COMPENSATED: 1, ListedStatus.NEEDS_INTERVENTION: 2}
    assert await ended_since(model, began, acted) == (acted, 3)
    await invariants_hold(ops, variant)
