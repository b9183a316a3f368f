"""The Temporal UI tells the truth: search attributes and summaries, read through visibility."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecution
from temporalio.common import TypedSearchAttributes

from harness.compare.faulty import Faulty
from orchestration.client import check_search_attributes, register_search_attributes
from orchestration.runtime import OrchestrationRuntime, open_runtime
from orchestration.server import TemporalServer, TemporalSettings
from orchestration.visibility import (
    NEEDS_INTERVENTION_FILTER,
    ORDER_ID,
    RESOLVED_FILTER,
    SAGA_REASON,
    SAGA_STATUS,
    SAGA_STEP,
    order_filter,
)
from shared.contracts import Phase, SagaStatus, StepName
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.servers import ServerError
from tests.integration.orchestration.orchestration_support import FAST, new_id, order, wait_running

pytestmark = pytest.mark.asyncio(loop_scope="module")

REFUND_NEVER_WORKS = FaultPlan(
    rules=[FaultRule(step=StepName.CHARGE_PAYMENT, phase=Phase.COMPENSATE, permanent=True)]
)
COMPLETE_NEVER_WORKS = FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, permanent=True)])


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 20
) -> None:
    """Visibility is eventually consistent: ask again until it has caught up."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"visibility never showed {what}")
        await asyncio.sleep(0.05)


async def listed(runtime: Faulty[OrchestrationRuntime], query: str) -> list[WorkflowExecution]:
    return [execution async for execution in runtime.runtime.client.list_workflows(query)]


async def listed_once_caught_up(
    runtime: Faulty[OrchestrationRuntime], query: str, ids: set[str], timeout_s: float = 20
) -> list[WorkflowExecution]:
    """The listing once it shows `ids`, or the last one read when the time is up.

    Each upsert of a search attribute reaches visibility on its own, in no promised order:
    one workflow closing says nothing about another's attributes having been indexed.
    """
    deadline = time.monotonic() + timeout_s
    found = await listed(runtime, query)
    while {execution.id for execution in found} != ids and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        found = await listed(runtime, query)
    return found


def attributes(execution: WorkflowExecution) -> dict[str, str | None]:
    found: TypedSearchAttributes = execution.typed_search_attributes
    return {key.name: found.get(key) for key in (ORDER_ID, SAGA_STATUS, SAGA_STEP, SAGA_REASON)}


async def test_the_needs_intervention_filter_lists_exactly_the_sagas_that_ended_so(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    sagas = {
        new_id("vis-happy"): (order("o-happy"), FaultPlan()),
        new_id("vis-compensated"): (order("o-compensated", country="AQ"), FaultPlan()),
        new_id("vis-refund"): (order("o-refund", country="AQ"), REFUND_NEVER_WORKS),
        new_id("vis-complete"): (order("o-complete"), COMPLETE_NEVER_WORKS),
    }
    for saga_id, (saga_order, faults) in sagas.items():
        await runtime.start_saga(saga_id, saga_order, faults, FAST)
    outcomes = {saga_id: await runtime.wait(saga_id, 20) for saga_id in sagas}
    ours = f'TaskQueue = "{runtime.runtime.task_queue}"'

    waiting = [s for s, o in outcomes.items() if o.status is SagaStatus.NEEDS_INTERVENTION]

    async def all_closed() -> bool:
        # A saga waiting for an operator keeps its workflow open; the others have closed.
        closed = await runtime.runtime.client.count_workflows(
            f'{ours} AND ExecutionStatus = "Completed"'
        )
        return closed.count == len(sagas) - len(waiting)

    await eventually(all_closed, "every settled saga closed")
    expected = {s for s, o in outcomes.items() if o.status is SagaStatus.NEEDS_INTERVENTION}
    query = f"{NEEDS_INTERVENTION_FILTER} AND {ours}"
    found = await listed_once_caught_up(runtime, query, expected)

    assert {execution.id for execution in found} == expected
    assert {tuple(attributes(execution).values()) for execution in found} == {
        ("o-complete", "NEEDS_INTERVENTION", "complete_order", None),
        ("o-refund", "NEEDS_INTERVENTION", "refund_payment", "shipment_failed"),
    }


async def test_the_other_endings_are_listed_with_their_status_step_and_reason(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    happy, compensated = new_id("vis-done"), new_id("vis-undone")
    await runtime.start_saga(happy, order("o-done"), FaultPlan(), FAST)
    await runtime.start_saga(compensated, order("o-undone", country="AQ"), FaultPlan(), FAST)
    for saga_id in (happy, compensated):
        await runtime.wait(saga_id, 20)
    ours = f'TaskQueue = "{runtime.runtime.task_queue}" AND ExecutionStatus = "Completed"'

    async def both_closed() -> bool:
        return (await runtime.runtime.client.count_workflows(ours)).count == 2

    await eventually(both_closed, "both sagas closed")
    by_id = {execution.id: attributes(execution) for execution in await listed(runtime, ours)}

    assert by_id[happy] == {
        "OrderId": "o-done",
        "SagaStatus": "COMPLETED",
        "SagaStep": "complete_order",
        "SagaReason": None,
    }
    assert by_id[compensated] == {
        "OrderId": "o-undone",
        "SagaStatus": "COMPENSATED",
        "SagaStep": "release_inventory",
        "SagaReason": "shipment_failed",
    }


async def test_a_running_saga_is_found_by_its_order_id_with_the_step_it_is_in(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id, order_id = new_id("vis-running"), new_id("o-running")
    hangs = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, hang=True)])
    slow = FAST.model_copy(update={"attempt_timeout_s": 60.0})
    await runtime.start_saga(saga_id, order(order_id), hangs, slow)
    await wait_running(runtime, saga_id, StepName.CHARGE_PAYMENT)
    query = order_filter(order_id)
    try:

        async def in_payment() -> bool:
            found = await listed(runtime, query)
            return [attributes(e).get("SagaStep") for e in found] == ["charge_payment"]

        await eventually(in_payment, "the saga in charge_payment")
        (execution,) = await listed(runtime, query)
    finally:
        await runtime.runtime.client.get_workflow_handle(saga_id).terminate("test over")

    assert execution.id == saga_id
    assert attributes(execution)["SagaStatus"] == "RUNNING"


async def test_the_list_and_timeline_read_as_the_saga_does(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    saga_id = new_id("vis-summary")
    saga_order = order("o-summary", country="AQ")
    await runtime.start_saga(saga_id, saga_order, FaultPlan(), FAST)
    await runtime.wait(saga_id, 20)
    handle = runtime.runtime.client.get_workflow_handle(saga_id)

    description = await handle.describe()
    summaries = [
        runtime.runtime.client.data_converter.payload_converter.from_payload(
            event.user_metadata.summary, str
        )
        async for event in handle.fetch_history_events()
        if event.HasField("activity_task_scheduled_event_attributes")
    ]

    assert await description.static_summary() == "Order o-summary: 2 item(s), 39.98, customer alice"
    details = await description.static_details()
    assert details is not None and "`o-summary`" in details
    assert summaries == [
        "place order",
        "reserve inventory",
        "charge payment",
        "deduct points",
        "create shipment",
        "undo: cancel shipment (shipment_failed)",
        "undo: restore points (shipment_failed)",
        "undo: refund payment (shipment_failed)",
        "undo: release inventory (shipment_failed)",
        "close order: COMPENSATED (shipment_failed)",
    ]


async def test_a_server_without_the_search_attributes_is_refused_with_the_command_to_fix_it(
    tmp_path: Path,
) -> None:
    async with TemporalServer(ui=False, search_attributes={}) as bare:
        settings = TemporalSettings(address=bare.address)
        with pytest.raises(ServerError) as refused:
            async with open_runtime(tmp_path, ORDERS_V1, settings=settings):
                pass
        await register_search_attributes(await bare.connect())
        async with open_runtime(tmp_path, ORDERS_V1, settings=settings) as runtime:
            await check_search_attributes(runtime.client)

    message = str(refused.value)
    assert "\n" not in message
    assert "lacks the search attributes OrderId, SagaStatus, SagaStep, SagaReason" in message
    assert message.endswith(
        "temporal operator search-attribute create --namespace default --name OrderId"
        " --name SagaStatus --name SagaStep --name SagaReason --type Keyword"
    )


async def test_a_saga_an_operator_resolved_leaves_the_needs_intervention_filter(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    resolved, waiting = new_id("vis-resolved"), new_id("vis-waiting")
    for saga_id in (resolved, waiting):
        await runtime.start_saga(saga_id, order("o-" + saga_id), COMPLETE_NEVER_WORKS, FAST)
        await runtime.wait(saga_id, 20)
    await runtime.resolve(resolved, "ops-anna", "shipped by hand")
    queue = runtime.runtime.task_queue
    ours = f'TaskQueue = "{queue}" AND OrderId IN ("o-{resolved}", "o-{waiting}")'

    async def resolved_closed() -> bool:
        closed = f'{ours} AND ExecutionStatus = "Completed"'
        return (await runtime.runtime.client.count_workflows(closed)).count == 1

    await eventually(resolved_closed, "the resolved saga closed")
    needing = await listed_once_caught_up(
        runtime, f"{NEEDS_INTERVENTION_FILTER} AND {ours}", {waiting}
    )
    done_by_hand = await listed_once_caught_up(runtime, f"{RESOLVED_FILTER} AND {ours}", {resolved})

    assert [execution.id for execution in needing] == [waiting]
    assert [execution.id for execution in done_by_hand] == [resolved]
    assert attributes(done_by_hand[0])["SagaStep"] == "complete_order"
