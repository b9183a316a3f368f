"""The orchestration's floor: the saga workflow itself on the saga's worker, activities no-ops."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.api.enums.v1 import EventType

from harness.bench.floors.orchestration import PROBE_ORDER, OrchestrationFloor
from harness.compare.faulty import Faulty
from orchestration.runtime import OrchestrationRuntime
from shared.contracts import SagaPolicy

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def test_floor_sagas_run_every_activity_of_a_happy_path_and_complete(
    runtime: Faulty[OrchestrationRuntime],
) -> None:
    async with OrchestrationFloor(runtime.runtime.client, PROBE_ORDER, SagaPolicy()) as floor:
        latencies = await asyncio.gather(*(floor.once(i) for i in range(4)))
        await floor.once(0)  # the load model's indexes repeat; workflow ids must not
        handle = floor.client.get_workflow_handle(f"{floor.task_queue}-0")
        history = await handle.fetch_history()

    assert len(latencies) == 4 and all(latency > 0 for latency in latencies)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert scheduled == [
        "place_order",
        "reserve_inventory",
        "charge_payment",
        "deduct_points",
        "create_shipment",
        "complete_order",
    ]


async def test_a_floor_saga_makes_no_spans_even_with_tracing_on(
    runtime: Faulty[OrchestrationRuntime], span_exporter: InMemorySpanExporter
) -> None:
    async with OrchestrationFloor(runtime.runtime.client, PROBE_ORDER, SagaPolicy()) as floor:
        await floor.once(0)

    assert span_exporter.get_finished_spans() == ()
