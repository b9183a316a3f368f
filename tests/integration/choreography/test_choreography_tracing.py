"""One saga, one trace: creation context as the parent (and link) of every process span."""

from __future__ import annotations

import pytest
from choreography_support import QUICK, make_order, saga_id
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from choreography.runtime import ChoreographyRuntime
from shared.contracts import SagaStatus
from shared.faults import FaultPlan

pytestmark = pytest.mark.asyncio(loop_scope="module")

GOLDEN_HAPPY_PATH = """\
saga golden
  create saga.order.placed (producer)
    process saga.order.placed (consumer) [reserve_inventory forward]
      reserve_inventory [reserve_inventory forward]
        create saga.inventory.reserved (producer)
          process saga.inventory.reserved (consumer) [charge_payment forward]
            charge_payment [charge_payment forward]
              create saga.payment.charged (producer)
                process saga.payment.charged (consumer) [deduct_points forward]
                  deduct_points [deduct_points forward]
                    create saga.points.deducted (producer)
                      process saga.points.deducted (consumer) [create_shipment forward]
                        create_shipment [create_shipment forward]
                          create saga.shipping.created (producer)
                            process saga.shipping.created (consumer) [complete_order forward]
                              complete_order [complete_order forward]
                                create saga.order.completed (producer)"""

_KINDS = {SpanKind.PRODUCER: " (producer)", SpanKind.CONSUMER: " (consumer)"}


def render(spans: list[ReadableSpan]) -> str:
    """The span tree as indented names, with the saga step and phase where a span has them."""
    ids = {span.context.span_id for span in spans if span.context}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        step = (
            f" [{attributes['saga.step']} {attributes['saga.phase']}]"
            if "saga.step" in attributes
            else ""
        )
        lines.append(f"{'  ' * depth}{span.name}{_KINDS.get(span.kind, '')}{step}")
        for child in children.get(span.context.span_id if span.context else None, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


async def _happy_saga(
    runtime: ChoreographyRuntime, exporter: InMemorySpanExporter
) -> list[ReadableSpan]:
    sid = saga_id("golden")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("saga golden") as root:
        await runtime.start_saga(sid, make_order("golden", points=100), FaultPlan(), QUICK)
        outcome = await runtime.wait(sid, 10)
    assert outcome.status is SagaStatus.COMPLETED
    trace_id = root.get_span_context().trace_id
    return [
        s for s in exporter.get_finished_spans() if s.context and s.context.trace_id == trace_id
    ]


async def test_happy_path_is_one_trace_with_the_golden_span_tree(
    runtime: ChoreographyRuntime, span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)

    assert render(spans) == GOLDEN_HAPPY_PATH


async def test_process_spans_follow_the_messaging_conventions(
    runtime: ChoreographyRuntime, span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)
    by_id = {span.context.span_id: span for span in spans if span.context}

    processes = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert len(processes) == 5  # placed, reserved, charged, deducted, created
    for span in processes:
        attributes = span.attributes or {}
        assert span.parent is not None
        assert [link.context.span_id for link in span.links] == [span.parent.span_id]
        assert by_id[span.parent.span_id].kind is SpanKind.PRODUCER
        assert attributes["messaging.system"] == "nats"
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.destination.name"].startswith(
            span.name.removeprefix("process ")
        )
        assert attributes["messaging.consumer.group.name"]
        assert attributes["messaging.message.id"]
        assert attributes["messaging.message.conversation_id"] == attributes["saga.id"]
        assert attributes["saga.variant"] == "choreography"
