"""One saga, one trace: creation context as the parent (and link) of every process span."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from choreography.events import template
from choreography.runtime import ChoreographyRuntime
from harness.compare.faulty import Faulty
from shared.contracts import SagaStatus
from shared.faults import FaultPlan
from shared.telemetry import SAGA_VARIANT
from tests.integration.choreography.choreography_support import (
    QUICK,
    eventually,
    make_order,
    saga_id,
)

VARIANT = "choreography"

pytestmark = pytest.mark.asyncio(loop_scope="module")

GOLDEN_HAPPY_PATH = """\
saga golden @saga-compare-harness
 send front.order.place.{saga_id} (producer) @saga-compare-harness
  process front.order.place.{saga_id} (consumer) @orders
   send saga.order.placed.{saga_id} (producer) @orders
    process saga.order.placed.{saga_id} (consumer) [reserve_inventory forward] @inventory
     reserve_inventory [reserve_inventory forward] @inventory
      send saga.inventory.reserved.{saga_id} (producer) @inventory
       process saga.inventory.reserved.{saga_id} (consumer) [charge_payment forward] @payment
        charge_payment [charge_payment forward] @payment
         send saga.payment.charged.{saga_id} (producer) @payment
          process saga.payment.charged.{saga_id} (consumer) [deduct_points forward] @points
           deduct_points [deduct_points forward] @points
            send saga.points.deducted.{saga_id} (producer) @points
             process saga.points.deducted.{saga_id} (consumer) [create_shipment forward] @shipping
              create_shipment [create_shipment forward] @shipping
               send saga.shipping.created.{saga_id} (producer) @shipping
                process saga.shipping.created.{saga_id} (consumer) [complete_order forward] @orders
                 complete_order [complete_order forward] @orders
                  send saga.order.completed.{saga_id} (producer) @orders"""
"""Every span names the service whose host made it (``@service.name``), all in one process."""

_KINDS = {SpanKind.PRODUCER: " (producer)", SpanKind.CONSUMER: " (consumer)"}


def render(spans: list[ReadableSpan]) -> str:
    """The span tree, one space of indent per level: names, step and phase, the span's service."""
    ids = {span.context.span_id for span in spans if span.context}
    children: dict[int | None, list[ReadableSpan]] = {}
    for span in sorted(spans, key=lambda s: s.start_time or 0):
        parent = span.parent.span_id if span.parent and span.parent.span_id in ids else None
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        step = (
            f" [{attributes['saga.step']!s} {attributes['saga.phase']!s}]"
            if "saga.step" in attributes
            else ""
        )
        service = f" @{span.resource.attributes['service.name']!s}"
        lines.append(f"{' ' * depth}{span.name}{_KINDS.get(span.kind, '')}{step}{service}")
        for child in children.get(span.context.span_id if span.context else None, []):
            walk(child, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return "\n".join(lines)


async def _happy_saga(
    runtime: Faulty[ChoreographyRuntime], exporter: InMemorySpanExporter
) -> list[ReadableSpan]:
    sid = saga_id("golden")
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("saga golden", attributes={SAGA_VARIANT: VARIANT}) as root:
        await runtime.start_saga(sid, make_order("golden", points=100), FaultPlan(), QUICK)
        outcome = await runtime.wait(sid, 10)
    assert outcome.status is SagaStatus.COMPLETED
    trace_id = root.get_span_context().trace_id

    def spans() -> list[ReadableSpan]:
        finished = exporter.get_finished_spans()
        return [s for s in finished if s.context and s.context.trace_id == trace_id]

    async def last_event_sent() -> bool:
        # The tracker completes the saga on order.completed; wait for that send span too.
        return any(s.name == f"send {template('order.completed')}" for s in spans())

    await eventually(last_event_sent)
    return spans()


async def test_happy_path_is_one_trace_with_the_golden_span_tree(
    runtime: Faulty[ChoreographyRuntime], span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)

    assert render(spans) == GOLDEN_HAPPY_PATH


async def test_process_spans_follow_the_messaging_conventions(
    runtime: Faulty[ChoreographyRuntime], span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)
    by_id = {span.context.span_id: span for span in spans if span.context}
    port = int(runtime.runtime.nats_url.rsplit(":", 1)[1])

    processes = [s for s in spans if s.kind is SpanKind.CONSUMER]
    assert len(processes) == 6  # the place command; placed, reserved, charged, deducted, created
    for span in processes:
        attributes = span.attributes or {}
        subject = str(attributes["messaging.destination.name"])
        assert span.parent is not None
        assert [link.context.span_id for link in span.links] == [span.parent.span_id]
        sender = by_id[span.parent.span_id]
        assert sender.kind is SpanKind.PRODUCER
        assert sender.name == span.name.replace("process ", "send ", 1)
        assert attributes["messaging.system"] == "nats"
        assert attributes["messaging.operation.type"] == "process"
        assert attributes["messaging.operation.name"] == "process"
        assert subject.endswith(f".{attributes['saga.id']!s}")
        template = subject.rsplit(".", 1)[0] + ".{saga_id}"
        assert attributes["messaging.destination.template"] == template
        assert span.name == f"process {template}"
        assert (attributes["server.address"], attributes["server.port"]) == ("127.0.0.1", port)
        assert str(attributes["messaging.consumer.group.name"]).startswith(
            str(span.resource.attributes["service.name"])
        )
        assert attributes["messaging.message.id"]
        assert attributes["messaging.message.conversation_id"] == attributes["saga.id"]
        assert attributes["saga.variant"] == "choreography"


async def test_each_message_has_one_producer_span_its_send_under_the_span_that_wrote_it(
    runtime: Faulty[ChoreographyRuntime], span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)
    by_id = {span.context.span_id: span for span in spans if span.context}
    consumed = {
        (s.attributes or {})["messaging.message.id"] for s in spans if s.kind is SpanKind.CONSUMER
    }

    producers = [s for s in spans if s.kind is SpanKind.PRODUCER]
    assert all(s.name.startswith("send ") for s in producers)
    # The command; placed, reserved, charged, deducted, created, completed: one span each.
    # (Seen once under a CPU load: 9. The message names each span, its message id and whether
    # the broker called it a duplicate, so such a run says which message was sent again.)
    assert len(producers) == 7, sorted(
        (
            s.name,
            str((s.attributes or {}).get("messaging.message.id")),
            str((s.attributes or {}).get("messaging.nats.duplicate")),
        )
        for s in producers
    )
    writers = {span.name: by_id[span.parent.span_id].name for span in producers if span.parent}
    assert writers == {
        "send front.order.place.{saga_id}": "saga golden",
        "send saga.order.placed.{saga_id}": "process front.order.place.{saga_id}",
        **{f"send {template(kind)}": step for kind, step in WRITTEN_BY.items()},
    }
    for span in producers:
        attributes = span.attributes or {}
        subject = str(attributes["messaging.destination.name"])
        assert attributes["messaging.system"] == "nats"
        assert attributes["messaging.operation.type"] == "send"
        assert attributes["messaging.operation.name"] == "send"
        assert attributes["messaging.destination.template"] == subject.rsplit(".", 1)[0] + (
            ".{saga_id}"
        )
        assert str(attributes["messaging.destination.template"]) in span.name
        assert attributes["messaging.message.conversation_id"] == attributes["saga.id"]
        assert int(str(attributes["messaging.message.body.size"])) > 0
        assert attributes["server.port"] == int(runtime.runtime.nats_url.rsplit(":", 1)[1])
        assert attributes["messaging.nats.duplicate"] is False
        assert attributes["saga.variant"] == "choreography"
    assert consumed < {(s.attributes or {})["messaging.message.id"] for s in producers}


WRITTEN_BY = {
    "inventory.reserved": "reserve_inventory",
    "payment.charged": "charge_payment",
    "points.deducted": "deduct_points",
    "shipping.created": "create_shipment",
    "order.completed": "complete_order",
}
"""Each event's send span is a child of the step span that wrote its outbox row."""


async def test_every_resource_names_its_service_namespace_and_variant(
    runtime: Faulty[ChoreographyRuntime], span_exporter: InMemorySpanExporter
) -> None:
    spans = await _happy_saga(runtime, span_exporter)

    resources = {
        (r["service.name"], r["service.namespace"], r.get("saga.variant"))
        for r in (span.resource.attributes for span in spans)
    }
    services = {"inventory", "payment", "points", "shipping", "orders"}
    assert resources == {
        *((name, "saga-compare", "choreography") for name in services),
        ("saga-compare-harness", "saga-compare", "choreography"),
    }
