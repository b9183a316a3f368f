"""Golden span trees: one trace per saga under the caller's root span, step spans in place."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness.compare.faulty import Faulty
from orchestration.runtime import OrchestrationRuntime
from shared.contracts import OrderRequest
from shared.faults import FaultPlan
from shared.telemetry import ROOT_SPAN_PREFIX, SAGA_PHASE, SAGA_STEP, SAGA_VARIANT
from tests.integration.orchestration.orchestration_support import FAST, new_id, order

pytestmark = pytest.mark.asyncio(loop_scope="module")

_tracer = trace.get_tracer("tests.orchestration")
STEPS = (
    "reserve_inventory",
    "charge_payment",
    "deduct_points",
    "create_shipment",
    "complete_order",
)

HAPPY = """\
saga {order_id}
  StartUpdateWithStartWorkflow:OrderSaga
    HandleUpdate:place
    RunWorkflow:OrderSaga
    StartActivity:place_order
      RunActivity:place_order
    StartActivity:reserve_inventory
      RunActivity:reserve_inventory
        reserve_inventory step=reserve_inventory phase=forward
    StartActivity:charge_payment
      RunActivity:charge_payment
        charge_payment step=charge_payment phase=forward
    StartActivity:deduct_points
      RunActivity:deduct_points
        deduct_points step=deduct_points phase=forward
    StartActivity:create_shipment
      RunActivity:create_shipment
        create_shipment step=create_shipment phase=forward
    StartActivity:complete_order
      RunActivity:complete_order
        complete_order step=complete_order phase=forward
    CompleteWorkflow:OrderSaga"""

SHIPMENT_FAILED = """\
saga {order_id}
  StartUpdateWithStartWorkflow:OrderSaga
    HandleUpdate:place
    RunWorkflow:OrderSaga
    StartActivity:place_order
      RunActivity:place_order
    StartActivity:reserve_inventory
      RunActivity:reserve_inventory
        reserve_inventory step=reserve_inventory phase=forward
    StartActivity:charge_payment
      RunActivity:charge_payment
        charge_payment step=charge_payment phase=forward
    StartActivity:deduct_points
      RunActivity:deduct_points
        deduct_points step=deduct_points phase=forward
    StartActivity:create_shipment
      RunActivity:create_shipment
        create_shipment step=create_shipment phase=forward
    StartActivity:cancel_shipment
      RunActivity:cancel_shipment
        cancel_shipment step=cancel_shipment phase=compensate
    StartActivity:restore_points
      RunActivity:restore_points
        restore_points step=restore_points phase=compensate
    StartActivity:refund_payment
      RunActivity:refund_payment
        refund_payment step=refund_payment phase=compensate
    StartActivity:release_inventory
      RunActivity:release_inventory
        release_inventory step=release_inventory phase=compensate
    StartActivity:close_order
      RunActivity:close_order
    CompleteWorkflow:OrderSaga"""


OBSERVATION = "HandleUpdate:settled"
"""The harness's wait (an update the workflow answers once settled): not part of the saga, and
where it lands among the steps depends on when the harness asked."""


def render(spans: Sequence[ReadableSpan], root: ReadableSpan) -> str:
    """The tree under ``root`` as indented names, siblings by start time, step attributes shown."""
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        label = span.name
        if SAGA_STEP in attributes:
            label += f" step={attributes[SAGA_STEP]!s} phase={attributes[SAGA_PHASE]!s}"
        lines.append("  " * depth + label)
        kids = children.get(span.context.span_id, []) if span.context else []
        for kid in sorted(kids, key=lambda s: s.start_time or 0):
            walk(kid, depth + 1)

    walk(root, 0)
    return "\n".join(lines)


async def traced_saga(
    runtime: Faulty[OrchestrationRuntime], exporter: InMemorySpanExporter, saga_order: OrderRequest
) -> str:
    """Run one saga under a harness-like root span and render its whole trace."""
    with _tracer.start_as_current_span(f"{ROOT_SPAN_PREFIX}{saga_order.order_id}") as root:
        await runtime.start_saga(saga_order.order_id, saga_order, FaultPlan(), FAST)
        await runtime.wait(saga_order.order_id, 10)
    trace_id = root.get_span_context().trace_id
    spans = [s for s in await _settled(exporter, trace_id) if s.name != OBSERVATION]
    (root_span,) = [s for s in spans if s.parent is None]
    assert len(spans) == len(render(spans, root_span).splitlines()), "a span left the tree"
    return render(spans, root_span)


async def _settled(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    """The trace's spans once the workflow's last span has been exported."""
    deadline = time.monotonic() + 5
    while True:
        spans = [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]
        done = any(s.name.startswith("CompleteWorkflow:") for s in spans)
        if done or time.monotonic() > deadline:
            return spans
        await asyncio.sleep(0.02)


async def test_happy_path_trace_matches_the_golden_tree(
    runtime: Faulty[OrchestrationRuntime], span_exporter: InMemorySpanExporter
) -> None:
    saga_order = order(new_id("golden-happy"))

    tree = await traced_saga(runtime, span_exporter, saga_order)

    assert tree == HAPPY.format(order_id=saga_order.order_id)


async def test_compensated_trace_matches_the_golden_tree(
    runtime: Faulty[OrchestrationRuntime], span_exporter: InMemorySpanExporter
) -> None:
    saga_order = order(new_id("golden-comp"), country="AQ")

    tree = await traced_saga(runtime, span_exporter, saga_order)

    assert tree == SHIPMENT_FAILED.format(order_id=saga_order.order_id)


async def test_the_worker_names_its_spans_and_the_caller_keeps_its_own(
    runtime: Faulty[OrchestrationRuntime], span_exporter: InMemorySpanExporter
) -> None:
    saga_order = order(new_id("services"))
    with _tracer.start_as_current_span(
        f"{ROOT_SPAN_PREFIX}{saga_order.order_id}", attributes={SAGA_VARIANT: "orchestration"}
    ) as root:
        await runtime.start_saga(saga_order.order_id, saga_order, FaultPlan(), FAST)
        await runtime.wait(saga_order.order_id, 10)
    spans = await _settled(span_exporter, root.get_span_context().trace_id)

    services = {
        (span.name.split(":")[0], span.resource.attributes["service.name"]) for span in spans
    }
    variants = {span.resource.attributes.get(SAGA_VARIANT) for span in spans}
    assert services == {
        ("saga " + saga_order.order_id, "saga-compare-harness"),
        ("StartUpdateWithStartWorkflow", "saga-compare-harness"),
        ("HandleUpdate", "order-saga-worker"),
        ("RunWorkflow", "order-saga-worker"),
        ("StartActivity", "order-saga-worker"),
        ("RunActivity", "order-saga-worker"),
        *((step, "order-saga-worker") for step in STEPS),
        ("CompleteWorkflow", "order-saga-worker"),
    }
    assert variants == {"orchestration"}
