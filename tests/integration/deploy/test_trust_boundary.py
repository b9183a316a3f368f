"""Issue 22's attacks on an `up` deployment, each refused by the broker or by the services.

An attacker on the same machine reaches the deployment's NATS port and Temporal frontend and
sends messages by hand. Each test here is one such message: a connection without
credentials, a service's user publishing another's event, an operator command from a user
that is not the monitor's, place commands and workflow starts whose order or policy lie, a
fault plan where a chaos deployment would read it. Every one is refused by the broker or ends
its saga REJECTED with nothing reserved, charged or shipped, in both styles, on both stores,
and no process dies. One deployment per store serves the whole module (docs/security.md).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from harness.compare.scenarios import FAST, PRICES, order
from harness.deploy.attach import open_front_door, resolve
from harness.deploy.topology import Topology
from orchestration.messages import SagaInput
from shared.contracts import (
    LineItem,
    OrderRequest,
    Reason,
    SagaOutcome,
    SagaPolicy,
    SagaStatus,
)
from shared.definitions import ORDERS_V1
from shared.runtime import SagaRuntime, UnknownSaga
from shared.seed import seed
from shared.settings import Settings
from shared.telemetry import HARNESS, configure_tracing
from tests.integration.deploy.deploy_support import deployment

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

VARIANTS = ["choreography", "orchestration"]
WAIT_S = 60.0


@dataclass
class Deployed:
    """The deployment, a front door of each style on it, and a way to log in as anyone."""

    topology: Topology
    doors: dict[str, SagaRuntime]

    def login(self, role: str) -> dict[str, str]:
        """The user a process kind (or the front door, the monitor) connects to NATS as."""
        path = self.topology.state_dir / "nats" / "users" / f"{role}.json"
        found: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return {"user": found["user"], "password": found["password"]}

    async def connect(self, role: str | None, errors: list[Exception]) -> NatsClient:
        """A connection as ``role`` (None: no credentials), collecting the server's errors."""

        async def collect(error: Exception) -> None:
            errors.append(error)

        login = self.login(role) if role is not None else {}
        return await nats.connect(
            self.topology.nats_url, allow_reconnect=False, error_cb=collect, **login
        )

    async def charged(self, variant: str, saga_id: str) -> list[Any]:
        state = await self.doors[variant].domain.snapshot()
        return [
            *(c for c in state.charges if c.saga_id == saga_id),
            *(s for s in state.shipments if s.saga_id == saga_id),
            *(lines for sid, lines in state.reserved.items() if sid == saga_id),
        ]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def topology(request: pytest.FixtureRequest) -> Iterator[Topology]:
    with deployment("--store", request.param) as found:
        yield found


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployed(topology: Topology) -> AsyncIterator[Deployed]:
    """Front doors of both styles, as an attached harness opens them, over a seeded catalogue."""
    attached = resolve(Settings(), topology.state_dir, VARIANTS)
    assert attached is not None
    tracing = configure_tracing(HARNESS)
    async with AsyncExitStack() as stack:
        doors = {
            variant: await stack.enter_async_context(
                open_front_door(variant, attached.variants[variant], tracing, ORDERS_V1)
            )
            for variant in VARIANTS
        }
        for door in doors.values():
            await seed(door.domain)
        yield Deployed(topology, doors)


def _priced(order_id: str, cents: int) -> OrderRequest:
    item = LineItem(product_id="widget", quantity=2, unit_price_cents=cents)
    return order(order_id).model_copy(update={"items": [item]})


FORGED: dict[str, tuple[Any, Reason]] = {
    "one-cent": (lambda sid: (_priced(sid, 1), FAST), Reason.PRICE_MISMATCH),
    "free-item": (lambda sid: (_priced(sid, 0), FAST), Reason.PRICE_MISMATCH),
    "mallory": (lambda sid: (order(sid, customer="mallory"), FAST), Reason.UNKNOWN_CUSTOMER),
    "endless-deadline": (
        lambda sid: (order(sid), FAST.model_copy(update={"deadline_s": 1e9})),
        Reason.POLICY_OUT_OF_BOUNDS,
    ),
}


def _saga_id(what: str) -> str:
    return f"attack-{what}-{uuid.uuid4().hex[:8]}"


async def _place_by_hand(deployed: Deployed, body: dict[str, Any], saga_id: str) -> None:
    """A place command written by hand, published with the front door's own user."""
    errors: list[Exception] = []
    connection = await deployed.connect("front", errors)
    try:
        js = connection.jetstream()
        await js.publish(f"front.order.place.{saga_id}", json.dumps(body).encode())
    finally:
        await connection.close()
    assert errors == []


def _command(
    saga_id: str, forged: OrderRequest, policy: SagaPolicy, **extra: Any
) -> dict[str, Any]:
    return {
        "saga_id": saga_id,
        "order": forged.model_dump(mode="json"),
        "policy": policy.model_dump(mode="json"),
        "started_at": time.time(),
        **extra,
    }


async def _start_by_hand(
    deployed: Deployed, saga_id: str, forged: OrderRequest, policy: SagaPolicy
) -> SagaOutcome:
    """A workflow started by hand on the deployment's task queue, with the input it lies in."""
    settings = deployed.topology.settings("orchestration")
    client = await Client.connect(
        deployed.topology.temporal_address, data_converter=pydantic_data_converter
    )
    forged_input = SagaInput(
        saga_id=saga_id,
        order=forged,
        policy=policy,
        saga=ORDERS_V1.spec,
        definition=ORDERS_V1.ref,
    )
    handle = await client.start_workflow(
        "OrderSaga",
        forged_input,
        id=saga_id,
        task_queue=settings.temporal_task_queue,
        result_type=SagaOutcome,
    )
    async with asyncio.timeout(WAIT_S):
        result: SagaOutcome = await handle.result()
    return result


async def test_a_connection_without_credentials_is_refused_by_the_broker(
    deployed: Deployed,
) -> None:
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await deployed.connect(None, [])


async def test_a_service_publishing_another_services_event_is_refused_by_the_broker(
    deployed: Deployed,
) -> None:
    subject = f"saga.inventory.reserved.{_saga_id('event')}"

    refusal = await _refused(deployed, "payment", subject, b"{}")

    assert f'permissions violation for publish to "{subject}"' in refusal
    await _never_stored(deployed, subject)


@pytest.mark.parametrize("role", ["front", "tracker", "payment"])
async def test_only_the_monitors_user_may_publish_an_operator_command(
    deployed: Deployed, role: str
) -> None:
    subject, body = _operator_command()

    refusal = await _refused(deployed, role, subject, body)

    assert f'permissions violation for publish to "{subject}"' in refusal
    await _never_stored(deployed, subject)


async def test_the_monitors_user_may_publish_an_operator_command(deployed: Deployed) -> None:
    """The control of the test above (the saga is unknown: the tracker does nothing)."""
    subject, body = _operator_command()
    connection = await deployed.connect("monitor", [])
    try:
        ack = await connection.jetstream().publish(subject, body)
    finally:
        await connection.close()

    assert ack.stream == "SAGA"


def _operator_command() -> tuple[str, bytes]:
    saga_id = _saga_id("operator")
    body = {
        "command_id": uuid.uuid4().hex,
        "action": "resolve",
        "saga_id": saga_id,
        "who": "mallory",
        "note": "forged",
        "at": time.time(),
    }
    return f"operator.resolve_requested.{saga_id}", json.dumps(body).encode()


async def _refused(deployed: Deployed, role: str, subject: str, body: bytes) -> str:
    """Publish as ``role`` and wait for the server's refusal (the error it sends back)."""
    errors: list[Exception] = []
    connection = await deployed.connect(role, errors)
    try:
        await connection.publish(subject, body)
        await connection.flush()
        async with asyncio.timeout(10):
            while not errors:  # the server's -ERR, read by the client's reader task
                await asyncio.sleep(0.01)
    finally:
        await connection.close()
    return str(errors[0])


async def _never_stored(deployed: Deployed, subject: str) -> None:
    with pytest.raises(NotFoundError):
        await _stored(deployed, "SAGA", subject)


async def _stored(deployed: Deployed, stream: str, subject: str) -> None:
    """The stream's last message on ``subject``, read as the admin (NotFoundError: none)."""
    reader = await deployed.connect("admin", [])
    try:
        await reader.jetstream().get_last_msg(stream, subject)
    finally:
        await reader.close()


@pytest.mark.parametrize("forgery", list(FORGED))
async def test_a_forged_place_command_ends_rejected_with_nothing_charged(
    deployed: Deployed, forgery: str
) -> None:
    make, reason = FORGED[forgery]
    saga_id = _saga_id(forgery)
    forged, policy = make(saga_id)

    await _place_by_hand(deployed, _command(saga_id, forged, policy), saga_id)
    outcome = await deployed.doors["choreography"].wait(saga_id, WAIT_S)

    assert (outcome.status, outcome.reason) == (SagaStatus.REJECTED, reason)
    assert await deployed.charged("choreography", saga_id) == []


@pytest.mark.parametrize("forgery", list(FORGED))
async def test_a_workflow_started_by_hand_with_a_forged_input_ends_rejected_with_nothing_charged(
    deployed: Deployed, forgery: str
) -> None:
    make, reason = FORGED[forgery]
    saga_id = _saga_id(forgery)
    forged, policy = make(saga_id)

    outcome = await _start_by_hand(deployed, saga_id, forged, policy)

    assert (outcome.status, outcome.reason) == (SagaStatus.REJECTED, reason)
    assert await deployed.charged("orchestration", saga_id) == []


async def test_an_honest_order_sent_by_hand_completes_and_a_clock_from_the_future_is_ignored(
    deployed: Deployed,
) -> None:
    """The control: the same paths take an order the records agree with (so the refusals
    above are the checks, not a broken deployment), and a start time in the future does not
    stretch the saga's deadline."""
    saga_id = _saga_id("honest")
    honest = _priced(saga_id, PRICES["widget"])
    future = _command(saga_id, honest, FAST, started_at=time.time() + 1e9)

    await _place_by_hand(deployed, future, saga_id)
    chosen = await deployed.doors["choreography"].wait(saga_id, WAIT_S)
    orchestrated = await _start_by_hand(deployed, f"{saga_id}-o", honest, FAST)

    assert chosen.status is orchestrated.status is SagaStatus.COMPLETED
    rows = await deployed.doors["choreography"].domain.orders.store.query(
        "SELECT deadline_at FROM sagas WHERE saga_id = ?", (saga_id,)
    )
    assert rows[0]["deadline_at"] <= time.time() + FAST.deadline_s


async def test_a_place_command_carrying_a_fault_plan_is_refused_as_undecodable(
    deployed: Deployed,
) -> None:
    saga_id = _saga_id("plan")
    crash = {"rules": [{"step": "charge_payment", "crash": "after_commit"}]}
    body = _command(saga_id, order(saga_id), FAST, faults=crash)

    await _place_by_hand(deployed, body, saga_id)

    letter = f"dlq.orders.front.order.place.{saga_id}"
    async with asyncio.timeout(WAIT_S):
        while True:  # the desk buries what it cannot decode in the dead-letter stream
            try:
                await _stored(deployed, "SAGA_DLQ", letter)
                break
            except NotFoundError:
                await asyncio.sleep(0.05)
    with pytest.raises(UnknownSaga):
        await deployed.doors["choreography"].describe(saga_id)


async def test_a_fault_plan_left_where_a_chaos_deployment_reads_them_changes_nothing(
    deployed: Deployed,
) -> None:
    """Without --chaos no process runs an injector: a crash plan in the state dir is a file."""
    pids = {kind: info.pid for kind, info in deployed.topology.processes.items()}
    plans = deployed.topology.state_dir / "faults" / "plans"
    plans.mkdir(parents=True, exist_ok=True)
    crash = {"rules": [{"step": "charge_payment", "crash": "after_commit"}]}
    outcomes = []
    for variant in VARIANTS:
        saga_id = _saga_id(f"crash-{variant[:5]}")
        (plans / f"{saga_id}.json").write_text(json.dumps(crash), encoding="utf-8")
        door = deployed.doors[variant]
        await door.start_saga(saga_id, _priced(saga_id, PRICES["widget"]), FAST)
        outcomes.append(await door.wait(saga_id, WAIT_S))

    assert [o.status for o in outcomes] == [SagaStatus.COMPLETED] * 2
    current = _current(deployed.topology.state_dir)
    assert {kind: info.pid for kind, info in current.processes.items()} == pids


def _current(state_dir: Path) -> Topology:
    from harness.deploy import topology

    found = topology.read(state_dir)
    assert found is not None
    return found
