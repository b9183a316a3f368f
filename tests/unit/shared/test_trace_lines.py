"""The exporter's direct JSON writer says exactly what the dict encoder says, for any span."""

from __future__ import annotations

import json

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from shared.telemetry import service_component, service_scope
from shared.trace_files import encode_line, encode_spans

tracer = trace.get_tracer("tests.trace_lines")


def test_a_line_decodes_to_the_same_traces_data_as_the_dict_encoder(
    span_exporter: InMemorySpanExporter,
) -> None:
    odd: dict[str, AttributeValue] = {
        "text": 'quote " slash \\ newline \n é',
        "n": -3,
        "f": 1.5,
        "b": True,
        "list": ["a", "b"],
    }
    with (
        tracer.start_as_current_span("root", attributes=odd) as root,
        service_scope(service_component("inventory")),
    ):
        link = Link(root.get_span_context(), {"why": "creation"})
        with tracer.start_as_current_span(
            "process x", kind=SpanKind.CONSUMER, links=[link], attributes={"k": 1}
        ) as span:
            span.add_event("fault", {"kinds": ["delay"], "attempt": 2})
            span.set_status(Status(StatusCode.ERROR, "bad\nthing"))
    spans = span_exporter.get_finished_spans()

    assert json.loads(encode_line(spans)) == encode_spans(spans)
    assert "\n" not in encode_line(spans)


def test_attribute_values_that_compare_equal_keep_their_own_types(
    span_exporter: InMemorySpanExporter,
) -> None:
    for values in ({"x": 1, "y": True, "z": 1.0}, {"x": True, "y": 1, "z": 1}):
        with tracer.start_as_current_span("typed", attributes=values):
            pass
    spans = span_exporter.get_finished_spans()

    encoded = json.loads(encode_line(spans))["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert encoded == encode_spans(spans)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert encoded[0]["attributes"][1]["value"] == {"boolValue": True}
    assert encoded[1]["attributes"][0]["value"] == {"boolValue": True}
