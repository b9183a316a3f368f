"""The JSON lines exporter writes OTLP/JSON with hex ids that load back unchanged."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind

from shared.telemetry import (
    JsonLinesSpanExporter,
    configure_tracing,
    read_jsonl,
    step_attributes,
)


def write_two_spans(path: Path) -> tuple[int, int, int]:
    provider = TracerProvider(resource=Resource.create({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("saga o-1") as root:
        attributes = step_attributes("s-1", "choreography", "charge_payment", "forward", 2)
        with tracer.start_as_current_span(
            "charge_payment",
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=[Link(root.get_span_context())],
        ) as child:
            child.add_event("saga.fault_injected", {"fault.kinds": ["transient"]})
    provider.shutdown()
    return (
        root.get_span_context().trace_id,
        root.get_span_context().span_id,
        child.get_span_context().span_id,
    )


def test_ids_are_32_and_16_hex_characters(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    write_two_spans(path)
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    assert len(span["traceId"]) == 32 and int(span["traceId"], 16)
                    assert len(span["spanId"]) == 16 and int(span["spanId"], 16)


def test_spans_load_back_with_tree_attributes_events_and_links(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    trace_id, root_id, child_id = write_two_spans(path)

    spans = {span["name"]: span for span in read_jsonl(path)}

    root, child = spans["saga o-1"], spans["charge_payment"]
    assert root["trace_id"] == child["trace_id"] == f"{trace_id:032x}"
    assert root["parent_span_id"] is None
    assert child["parent_span_id"] == f"{root_id:016x}" == root["span_id"]
    assert child["span_id"] == f"{child_id:016x}"
    assert child["kind"] == 5  # OTLP SPAN_KIND_CONSUMER
    assert child["attributes"]["saga.attempt"] == 2
    assert child["attributes"]["saga.phase"] == "forward"
    assert child["events"][0]["attributes"]["fault.kinds"] == ["transient"]
    assert child["links"] == [{"trace_id": root["trace_id"], "span_id": root["span_id"]}]
    assert child["resource"]["service.name"] == "svc"
    assert child["end_ns"] >= child["start_ns"] > 0


def test_an_otlp_endpoint_in_the_environment_sends_spans_over_http(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    try:
        tracing = configure_tracing("svc", "test", set_global=False)
        with tracing.tracer("t").start_as_current_span("saga o-9"):
            pass
        tracing.shutdown()
    finally:
        server.shutdown()

    assert [path for path, _ in received] == ["/v1/traces"]
    assert b"saga o-9" in received[0][1]
