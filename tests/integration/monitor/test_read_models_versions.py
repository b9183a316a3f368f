"""The monitor's read models and versions: each saga's definition version, and the sagas a
worker or a consumer refused for their definition, listed as stuck with the reason."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio

from choreography.bus import Bus
from choreography.events import placed
from choreography.runtime import ChoreographyRuntime
from harness.compare.scenarios import order
from harness.session import VARIANTS, Session, open_session
from monitor.settings import MonitorSettings
from monitor.wiring import read_model
from orchestration.messages import SagaInput
from orchestration.runtime import OrchestrationRuntime
from orchestration.visibility import start_attributes
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import SagaPolicy, ServiceName, StepName
from shared.definitions import definition_named
from shared.faults import FaultPlan, Hold, released
from shared.read_model import Alert, AlertKind, ReadModel, SagaQuery
from shared.seed import seed
from tests.integration.monitor.monitor_sagas import POLICY

pytestmark = pytest.mark.asyncio(loop_scope="module")

VOUCHER = definition_named("voucher")
HANGING = SagaPolicy(deadline_s=120.0, attempt_timeout_s=120.0)
PARKED = FaultPlan(
    holds=[Hold(step=StepName.CHARGE_PAYMENT, until=released("never"), timeout_s=1.0)]
)
"""Open at its payment for good, a second at a time: the attempt in flight when the session
stops ends within a second (a step that hangs would make the stop wait out its grace)."""


@dataclass
class Ran:
    session: Session
    models: dict[str, ReadModel]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ran(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ran]:
    """A v1 saga that ended, on both styles (the session's definition is v1)."""
    folder = tmp_path_factory.mktemp("versions")
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        models = {v: read_model(r, MonitorSettings()) for v, r in session.runtimes.items()}
        for runtime in session.drivers.values():
            await seed(runtime.domain)
            await runtime.start_saga("ver-happy-1", order("ver-happy"), FaultPlan(), POLICY)
            await runtime.wait("ver-happy-1", 30)
        yield Ran(session, models)


async def refused(model: ReadModel, saga_id: str, timeout_s: float = 30.0) -> Alert:
    """The saga's alert once it is listed as refused (quiet time 0: every candidate)."""
    deadline = time.monotonic() + timeout_s
    while True:
        alerts = await model.alerts(time.time(), 0.0, 0.0)
        found = [a for a in alerts if a.row.saga_id == saga_id and AlertKind.REFUSED in a.kinds]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"{saga_id} was never listed as refused"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_every_saga_row_shows_the_version_of_its_definition(ran: Ran, variant: str) -> None:
    model = ran.models[variant]
    deadline = time.monotonic() + 20
    while not (rows := await model.list_sagas(SagaQuery(search="ver-happy-1"), time.time())):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    detail = await model.saga("ver-happy-1")

    assert [r.version for r in rows] == ["v1"]
    assert detail is not None and detail.row.version == "v1"


async def test_a_workflow_the_worker_refuses_for_its_definition_is_listed_with_the_reason(
    ran: Ran,
) -> None:
    runtime = ran.session.runtimes["orchestration"]
    assert isinstance(runtime, OrchestrationRuntime)
    saga = SagaInput(
        saga_id="ver-voucher-1",
        order=order("ver-voucher"),
        policy=POLICY,
        saga=VOUCHER.spec,
        definition=VOUCHER.ref,
    )
    await runtime.client.start_workflow(
        OrderSagaWorkflow.run,
        saga,
        id=saga.saga_id,
        task_queue=runtime.task_queue,
        search_attributes=start_attributes(saga.order),  # as the runtime starts a saga
    )

    alert = await refused(ran.models["orchestration"], saga.saga_id)

    assert alert.reason is not None
    assert "made by saga definition orders-voucher v1" in alert.reason
    assert "this process holds orders v1" in alert.reason


async def test_a_saga_whose_event_a_consumer_refused_for_its_definition_is_listed(
    ran: Ran,
) -> None:
    driver = ran.session.drivers["choreography"]
    runtime = driver.runtime
    assert isinstance(runtime, ChoreographyRuntime)
    await driver.start_saga("ver-chor-1", order("ver-chor"), PARKED, HANGING)
    # An event of that saga written by an orders process holding another definition (a
    # release that should not be there, logged in as the orders service may): the v1
    # inventory service refuses it into the dead letters.
    stray = placed("ver-chor-1", order("ver-chor"), POLICY, time.time(), VOUCHER.ref)
    stray = stray.model_copy(update={"event_id": "ver-chor-1:stray"})
    nats = runtime.settings.nats
    orders = await Bus.connect(nats.servers, "stray-orders", nats.login_for(ServiceName.ORDERS))
    try:
        await orders.js.publish(
            stray.subject, stray.model_dump_json().encode(), headers={"Nats-Msg-Id": "stray-1"}
        )
    finally:
        await orders.close()

    alert = await refused(ran.models["choreography"], "ver-chor-1")

    assert alert.reason is not None
    assert "made by saga definition orders-voucher v1" in alert.reason
