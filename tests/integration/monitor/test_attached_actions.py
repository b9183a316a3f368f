"""Operator actions from the monitor attached to a running deployment (front door only).

The deployment runs as its processes would: a nats-server and the five choreography services
with the tracker beside them; a Temporal dev server and a worker. The board comes from
`attached_board` and the settings alone, as `saga-compare monitor` builds it: it acts through
a Temporal update on the open workflow, and through an operator command on NATS that the
tracker carries out once. The same action has the same effect, is recorded on the saga, and
the invariants hold afterwards.

The servers, the deployment's processes and the board are the module's, and so are the sagas
it settles at once in both styles (`SAGAS`); each saga an action changes belongs to one test,
which alone acts on it, so any test runs alone or in any order.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from choreography import operator
from choreography.broker import NatsBroker, NatsSettings
from choreography.bus import Outgoing
from choreography.host import ChoreographySettings
from choreography.runtime import ChoreographyRuntime
from choreography.runtime import open_runtime as open_choreography
from harness.compare.faulty import Faulty, injected
from harness.compare.invariants import check_invariants
from harness.compare.scenarios import order
from monitor.app import create_app, fixed
from monitor.attach import attached_board
from monitor.board import Board
from monitor.security import SESSION_COOKIE, Guard
from monitor.settings import MonitorSettings
from orchestration.runtime import OrchestrationRuntime
from orchestration.runtime import open_runtime as open_orchestration
from orchestration.server import TemporalServer, TemporalSettings
from shared.contracts import (
    Action,
    OrderRequest,
    SagaStatus,
)
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan
from shared.read_model import ListedStatus, SagaDetail
from shared.runtime import NotAwaitingOperator, OperatorUnavailable
from shared.seed import DEFAULT_SEED, seed
from shared.settings import Settings
from tests.integration.monitor.monitor_sagas import COMPLETION_REFUSED, POLICY, stuck

pytestmark = pytest.mark.asyncio(loop_scope="module")

VARIANTS = ("orchestration", "choreography")


BOTH = {
    # test_a_retry_from_the_attached_monitor_compensates_the_saga
    "att-retry": stuck(1),
    # test_resolve_from_the_attached_monitor_records_the_note_and_ends_the_wait
    "att-resolve": stuck(1),
    # test_over_http_a_retry_is_recorded_and_shown_on_the_saga_page
    "att-http": stuck(1),
    # test_a_step_retry_from_the_attached_monitor_completes_the_saga_alike_in_both_styles
    "att-finish": COMPLETION_REFUSED,
    # test_acting_on_a_saga_that_does_not_wait_is_refused, and its 409 over HTTP: a refused
    # action changes nothing, so the two share the completed saga
    "att-done": FaultPlan(),
}
CHOREOGRAPHY = {
    # test_a_redelivered_retry_command_runs_no_second_round (its retries keep failing)
    "att-again": stuck(3),
    # test_a_resolve_command_redelivered_after_it_was_done_changes_nothing
    "att-resolve-twice": stuck(1),
    # test_without_the_tracker_s_consumer_nothing_is_published
    "att-unheard": stuck(1),
    # test_a_command_the_tracker_cannot_take_now_is_queued_and_done_later
    "att-later": stuck(1),
    # test_a_front_door_runtime_acts_through_operator_commands
    "att-front": stuck(1),
}
SAGAS = {"orchestration": BOTH, "choreography": {**BOTH, **CHOREOGRAPHY}}
"""Each style's sagas, settled before the tests begin (those with faults wait for an
operator, the others completed), by the test that acts on them."""

Runtime = OrchestrationRuntime | ChoreographyRuntime


@dataclass
class Deployment:
    runtimes: dict[str, Faulty[Runtime]]
    board: Board
    orders: dict[str, OrderRequest]
    folder: Path
    nats_url: str


async def settled(
    runtime: Faulty[Runtime], plans: Mapping[str, FaultPlan], orders: Mapping[str, OrderRequest]
) -> None:
    """Start these sagas (id: faults) together; return once those with faults wait for an
    operator and the others completed."""
    for saga_id, plan in plans.items():
        await runtime.start_saga(saga_id, orders[saga_id], plan, POLICY)
    for saga_id, plan in plans.items():
        waits = SagaStatus.NEEDS_INTERVENTION if plan.rules else SagaStatus.COMPLETED
        assert (await runtime.wait(saga_id, 30)).status is waits


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    """Both styles deployed on real servers, each with its `SAGAS` settled, and the board."""
    folder = tmp_path_factory.mktemp("attached")
    choreography_plans, choreography_hooks = injected("choreography")
    orchestration_plans, orchestration_hooks = injected("orchestration")
    async with (
        NatsBroker(state_dir=folder / "nats") as broker,
        TemporalServer(ui=False) as temporal,
        # The choreography's five services and the tracker, as `python -m choreography
        # --service all` runs them (each host with its own connection), over SQLite stores.
        open_choreography(
            folder / "choreography",
            ORDERS_V1,
            settings=ChoreographySettings(nats=NatsSettings(url=broker.url)),
            hooks=choreography_hooks,
        ) as choreography,
        # A worker on the orchestration's task queue, over the server's frontend.
        open_orchestration(
            folder / "orchestration",
            ORDERS_V1,
            settings=TemporalSettings(address=temporal.address),
            hooks=orchestration_hooks,
        ) as orchestration,
    ):
        runtimes: dict[str, Faulty[Runtime]] = {
            "orchestration": Faulty(orchestration, orchestration_plans),
            "choreography": Faulty(choreography, choreography_plans),
        }
        for runtime in runtimes.values():
            await seed(runtime.domain)
        orders = {saga_id: order(saga_id) for saga_id in SAGAS["choreography"]}
        await asyncio.gather(*(settled(runtimes[v], SAGAS[v], orders) for v in VARIANTS))
        settings = Settings(
            nats_url=broker.url,
            temporal_address=temporal.address,
            data_dir=folder,  # the choreography keeps its stores in <data dir>/choreography
        )
        async with attached_board(settings, MonitorSettings(cache_s=0)) as board:
            yield Deployment(runtimes, board, orders, folder, broker.url)


async def detail(board: Board, variant: str, saga_id: str) -> SagaDetail:
    found = await board.saga(variant, saga_id)
    assert found is not None
    return found


async def invariants_hold(deployment: Deployment, variant: str) -> None:
    runtime = deployment.runtimes[variant]
    state = await runtime.domain.snapshot()
    orders = deployment.orders
    sagas = [(orders[saga_id], await runtime.describe(saga_id)) for saga_id in SAGAS[variant]]
    checks = check_invariants(ORDERS_V1, DEFAULT_SEED, state, sagas)
    assert checks == dict.fromkeys(checks, True)


async def test_the_attached_board_can_act_on_both_styles(deployment: Deployment) -> None:
    assert all(deployment.board.can_act(variant) for variant in VARIANTS)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_a_retry_from_the_attached_monitor_compensates_the_saga(
    deployment: Deployment, variant: str
) -> None:
    assert (await detail(deployment.board, variant, "att-retry")).waiting

    action = await deployment.board.retry_compensation(variant, "att-retry", "ops-anna")

    assert (action.action, action.result) == ("retry_compensation", "compensated")
    saga = await detail(deployment.board, variant, "att-retry")
    assert (saga.row.status, saga.waiting) == (ListedStatus.COMPENSATED, False)
    assert [(a.action, a.who, a.result) for a in saga.actions] == [
        ("retry_compensation", "ops-anna", "compensated")
    ]
    outcome = await deployment.runtimes[variant].describe("att-retry")
    assert outcome.status is SagaStatus.COMPENSATED
    await invariants_hold(deployment, variant)


async def test_a_step_retry_from_the_attached_monitor_completes_the_saga_alike_in_both_styles(
    deployment: Deployment,
) -> None:
    """The completion refused past the pivot, retried: a Temporal update on the open workflow,
    an operator command the tracker's desk turns into ``order.retry_step`` (round 1), once."""
    board = deployment.board
    commands = board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    sent: list[operator.OperatorCommand] = []
    original = commands.bus.publish

    async def recording(batch: Sequence[Outgoing]) -> None:
        sent.extend(operator.OperatorCommand.model_validate_json(item.body) for item in batch)
        await original(batch)

    for variant in VARIANTS:
        waiting = await detail(board, variant, "att-finish")
        assert (waiting.waiting, waiting.failed_step) == (True, "complete_order")

        commands.bus.publish = recording  # type: ignore[method-assign]
        try:
            action = await board.retry_step(variant, "att-finish", "ops-ida")
        finally:
            commands.bus.publish = original  # type: ignore[method-assign]

        assert (action.action, action.who, action.result, action.round) == (
            "retry_step",
            "ops-ida",
            "completed",
            1,
        )
        saga = await detail(board, variant, "att-finish")
        assert (saga.row.status, saga.waiting, saga.failed_step) == (
            ListedStatus.COMPLETED,
            False,
            None,
        )
        assert [(a.action, a.who, a.result) for a in saga.actions] == [
            ("retry_step", "ops-ida", "completed")
        ]
        rounds = [s for s in saga.steps if s.step == "complete_order"]
        assert [(s.round, s.status) for s in rounds] == [(0, "failed"), (1, "done")]
        assert rounds[0].ended_at is not None and rounds[1].started_at is not None
        assert rounds[1].started_at >= saga.actions[0].at >= rounds[0].ended_at
        await invariants_hold(deployment, variant)
    assert [(c.action, c.saga_id) for c in sent] == [("retry_step", "att-finish")]
    assert (await republish(deployment, sent[0])).duplicate  # delivered again: nothing done
    again = await detail(board, "choreography", "att-finish")
    assert [(a.action, a.result) for a in again.actions] == [("retry_step", "completed")]
    left = [await _left_by(deployment, variant, "att-finish") for variant in VARIANTS]
    assert left[0] == left[1]
    assert left[0]["orders"] == ["COMPLETED"] and left[0]["shipments"] == ["created"]


async def _left_by(deployment: Deployment, variant: str, saga_id: str) -> dict[str, object]:
    """What a saga left in the services: its charge, reservation, shipment and order."""
    state = await deployment.runtimes[variant].domain.snapshot()
    return {
        "charges": [(c.amount_cents, c.refunded_cents) for c in state.charges
                    if c.saga_id == saga_id],
        "reserved": state.reserved.get(saga_id),
        "shipments": [s.status for s in state.shipments if s.saga_id == saga_id],
        "orders": [r.status.value for r in state.orders if r.saga_id == saga_id],
    }  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
async def test_resolve_from_the_attached_monitor_records_the_note_and_ends_the_wait(
    deployment: Deployment, variant: str
) -> None:
    await deployment.board.resolve(variant, "att-resolve", "ops-bo", "refunded by bank transfer")

    saga = await detail(deployment.board, variant, "att-resolve")
    assert (saga.row.status, saga.waiting) == (ListedStatus.NEEDS_INTERVENTION, False)
    assert [(a.action, a.who, a.result, a.note) for a in saga.actions] == [
        ("resolve", "ops-bo", "resolved", "refunded by bank transfer")
    ]
    await invariants_hold(deployment, variant)
    # A second action on a saga that no longer waits is refused, and not recorded.
    with pytest.raises(NotAwaitingOperator, match="att-resolve does not wait for an operator"):
        await deployment.board.resolve(variant, "att-resolve", "ops-cy", "again")
    assert len((await detail(deployment.board, variant, "att-resolve")).actions) == 1


@pytest.mark.parametrize("variant", VARIANTS)
async def test_acting_on_a_saga_that_does_not_wait_is_refused(
    deployment: Deployment, variant: str
) -> None:
    with pytest.raises(NotAwaitingOperator, match=r"att-done .*\(it is COMPLETED\)"):
        await deployment.board.retry_compensation(variant, "att-done", "ops-cy")
    with pytest.raises(NotAwaitingOperator, match=r"att-done .*\(it is COMPLETED\)"):
        await deployment.board.resolve(variant, "att-done", "ops-cy", "again")
    assert (await detail(deployment.board, variant, "att-done")).actions == []


async def republish(deployment: Deployment, command: operator.OperatorCommand) -> operator.Answer:
    """The same command delivered again, past the broker's dedupe (a new ``Nats-Msg-Id``, as
    after the duplicate window), and the desk's answer to it."""
    commands = deployment.board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    nc = commands.bus.nc
    answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def arrived(msg: Msg) -> None:
        if not answered.done():
            answered.set_result(msg.data)

    reply_to = nc.new_inbox()
    subscription = await nc.subscribe(reply_to, cb=arrived)
    again = command.model_copy(update={"reply_to": reply_to})
    copy = operator.outgoing(again)
    headers = {**copy.headers, "Nats-Msg-Id": uuid.uuid4().hex}
    await commands.bus.js.publish(copy.subject, copy.body, headers=headers)
    try:
        async with asyncio.timeout(10):
            return operator.Answer.model_validate_json(await answered)
    finally:
        await subscription.unsubscribe()


async def test_a_redelivered_retry_command_runs_no_second_round(deployment: Deployment) -> None:
    board = deployment.board
    commands = board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    sent: list[operator.OperatorCommand] = []
    original = commands.bus.publish

    async def recording(batch: Sequence[Outgoing]) -> None:
        sent.extend(operator.OperatorCommand.model_validate_json(item.body) for item in batch)
        await original(batch)

    commands.bus.publish = recording  # type: ignore[method-assign]
    try:
        first = await board.retry_compensation("choreography", "att-again", "ops-anna")
    finally:
        commands.bus.publish = original  # type: ignore[method-assign]
    assert (first.result, first.round) == ("still_failing", 1)
    saga = await detail(board, "choreography", "att-again")
    assert saga.waiting  # it waits again: a second round would be accepted now

    answer = await republish(deployment, sent[0])

    assert answer.duplicate and answer.action is None
    saga = await detail(board, "choreography", "att-again")
    assert [(a.action, a.result) for a in saga.actions] == [("retry_compensation", "still_failing")]
    outcome = await deployment.runtimes["choreography"].describe("att-again")
    assert [a.round for a in outcome.actions] == [1]
    assert outcome.status is SagaStatus.NEEDS_INTERVENTION and not outcome.resolved
    await invariants_hold(deployment, "choreography")


async def test_a_resolve_command_redelivered_after_it_was_done_changes_nothing(
    deployment: Deployment,
) -> None:
    command = operator.OperatorCommand(
        command_id=uuid.uuid4().hex,
        action=Action.RESOLVE,
        saga_id="att-resolve-twice",
        who="ops-dee",
        note="written off",
        at=time.time(),
    )
    first = await republish(deployment, command)
    second = await republish(deployment, command)

    assert first.action is not None and first.action.result == "resolved"
    assert second.duplicate
    saga = await detail(deployment.board, "choreography", "att-resolve-twice")
    assert [(a.action, a.who, a.note) for a in saga.actions] == [
        ("resolve", "ops-dee", "written off")
    ]


# -- over HTTP, as the page posts ------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def http(deployment: Deployment) -> AsyncIterator[httpx.AsyncClient]:
    """The monitor's app over the attached board (in this loop: the board's connections are)."""
    app = create_app(fixed(deployment.board), Guard(loopback=True))
    app.state.board = deployment.board  # what its lifespan does
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


async def form_token(http: httpx.AsyncClient, path: str) -> str:
    page = await http.get(path)
    assert page.status_code == 200, page.text
    guard: Guard = http._transport.app.state.guard  # type: ignore[attr-defined]
    return guard.csrf_for(http.cookies[SESSION_COOKIE])


@pytest.mark.parametrize("variant", VARIANTS)
async def test_over_http_a_retry_is_recorded_and_shown_on_the_saga_page(
    deployment: Deployment, http: httpx.AsyncClient, variant: str
) -> None:
    path = f"/sagas/{variant}/att-http"
    token = await form_token(http, path)

    answer = await http.post(f"{path}/retry", data={"csrf": token, "who": "ops-eve"})

    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"{path}?done=retry"
    page = (await http.get(path)).text
    assert re.search(r"ops-eve", page) and "compensated" in page
    assert (await detail(deployment.board, variant, "att-http")).row.status is (
        ListedStatus.COMPENSATED
    )
    await invariants_hold(deployment, variant)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_over_http_acting_on_a_saga_that_does_not_wait_is_a_409_with_one_line(
    http: httpx.AsyncClient, variant: str
) -> None:
    path = f"/sagas/{variant}/att-done"
    token = await form_token(http, path)

    answer = await http.post(f"{path}/retry", data={"csrf": token, "who": "ops-eve"})

    assert answer.status_code == 409
    message = re.search(r'role="alert">([^<]*)<', answer.text)
    assert message is not None
    expected = "saga att-done does not wait for an operator (it is COMPLETED)"
    assert message.group(1) == expected


# -- when the tracker cannot take the command ------------------------------------------------


async def test_without_the_tracker_s_consumer_nothing_is_published(
    deployment: Deployment,
) -> None:
    """A deployment whose tracker never made the ``operator`` durable (another suffix)."""
    commands = deployment.board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    elsewhere = operator.OperatorCommands(
        commands.bus, commands.tracker, consumer_suffix="-elsewhere"
    )
    before = (await commands.bus.js.stream_info("SAGA")).state.messages

    with pytest.raises(OperatorUnavailable, match="no consumer 'operator-elsewhere'"):
        await elsewhere.retry_compensation("att-unheard", "ops-fay")

    assert (await commands.bus.js.stream_info("SAGA")).state.messages == before


async def test_a_command_the_tracker_cannot_take_now_is_queued_and_done_later(
    deployment: Deployment,
) -> None:
    """The desk's durable paused (its process down, in effect): the caller hears nothing in
    time; once the durable is back the command is carried out, once."""
    commands = deployment.board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    impatient = operator.OperatorCommands(commands.bus, commands.tracker, answer_timeout_s=0.5)
    await commands.bus.pause(operator.DURABLE, 120)
    try:
        with pytest.raises(OperatorUnavailable, match=r"not answered within 0\.5s; the command"):
            await impatient.resolve("att-later", "ops-fay", "later")
        assert (await detail(deployment.board, "choreography", "att-later")).waiting
    finally:
        await commands.bus.js.resume_consumer("SAGA", operator.DURABLE)

    deadline = time.monotonic() + 20
    while (saga := await detail(deployment.board, "choreography", "att-later")).waiting:
        assert time.monotonic() < deadline, "the queued command was never carried out"
        await asyncio.sleep(0.05)
    assert [(a.action, a.who, a.note) for a in saga.actions] == [("resolve", "ops-fay", "later")]


# -- the harness's front door to a deployment acts the same way -------------------------------


async def test_a_front_door_runtime_acts_through_operator_commands(
    deployment: Deployment,
) -> None:
    """No tracker in the process (``--attach``): the runtime sends the same command."""
    settings = ChoreographySettings(nats=NatsSettings(url=deployment.nats_url))
    commands = deployment.board.operators["choreography"]
    assert isinstance(commands, operator.OperatorCommands)
    before = (await commands.bus.js.consumer_info("SAGA", operator.DURABLE)).delivered
    async with open_choreography(
        deployment.folder / "choreography", ORDERS_V1, settings=settings, services=()
    ) as front:
        action = await front.retry_compensation("att-front", "ops-gus")
        with pytest.raises(NotAwaitingOperator, match="att-front does not wait"):
            await front.resolve("att-front", "ops-gus", "again")

    assert (action.action, action.who) == ("retry_compensation", "ops-gus")
    assert action.result == "compensated"
    after = (await commands.bus.js.consumer_info("SAGA", operator.DURABLE)).delivered
    assert after.consumer_seq == before.consumer_seq + 1  # one command; the refusal published none
    saga = await detail(deployment.board, "choreography", "att-front")
    assert (saga.row.status, saga.waiting) == (ListedStatus.COMPENSATED, False)
    await invariants_hold(deployment, "choreography")
