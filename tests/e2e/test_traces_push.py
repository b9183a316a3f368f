"""`saga-compare traces push`: a run's trace file reaches an OTLP/HTTP receiver intact.

The receiver here is a real HTTP server on loopback that takes what Phoenix takes:
``application/x-protobuf`` decoded with `opentelemetry-proto` (JSON is answered 415, as
Phoenix answers it). The spans it decodes must be the file's, ids and parents included.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.report.trace_file import read_spans

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

DATA = Path(__file__).parents[1] / "data"


@dataclass
class Receiver:
    """An OTLP/HTTP traces endpoint that keeps every span it decoded."""

    url: str
    spans: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    """(service, trace id, span id, parent span id, name), ids in hex."""
    content_types: list[str] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            kind = self.headers.get("Content-Type", "")
            got.content_types.append(kind)
            if self.path != "/v1/traces":
                return self._answer(404, b"not found")
            if kind != "application/x-protobuf":
                return self._answer(415, b"Unsupported content type")
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        got.spans.append(
                            (
                                service,
                                span.trace_id.hex(),
                                span.span_id.hex(),
                                span.parent_span_id.hex(),
                                span.name,
                            )
                        )
            self._answer(200, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def test_push_sends_every_span_of_the_file_as_protobuf_with_its_ids(
    cli: Cli, receiver: Receiver
) -> None:
    path = DATA / "small_traces.jsonl"
    expected = {
        (s.service, s.trace_id, s.span_id, s.parent_span_id or "", s.name) for s in read_spans(path)
    }

    result = cli("traces", "push", str(path), "--endpoint", receiver.url)

    assert result.returncode == 0, result.stderr
    assert set(receiver.spans) == expected and len(receiver.spans) == len(expected)
    assert set(receiver.content_types) == {"application/x-protobuf"}
    traces = len({trace for _, trace, *_ in expected})
    assert result.stdout.strip() == (
        f"pushed {len(expected)} spans of {traces} traces in 1 requests to {receiver.url}/v1/traces"
    )


def test_a_receiver_that_refuses_the_request_is_one_line_naming_its_answer(
    cli: Cli, receiver: Receiver
) -> None:
    result = cli(
        "traces", "push", str(DATA / "small_traces.jsonl"), "--endpoint", receiver.url + "/otlp"
    )

    cli.assert_one_line_error(result, f"{receiver.url}/otlp/v1/traces", "answered 404")
    assert receiver.spans == []


def test_a_file_that_is_not_a_trace_file_sends_nothing(cli: Cli, receiver: Receiver) -> None:
    path = cli.inputs / "traces.jsonl"
    path.write_text((DATA / "small_traces.jsonl").read_text() + '{"resourceSpans": 5}\n')

    result = cli("traces", "push", str(path), "--endpoint", receiver.url)

    cli.assert_one_line_error(result, "not an OTLP JSON lines trace file", "line ")
    assert receiver.content_types == []


def test_an_endpoint_that_is_not_an_http_url_is_refused(cli: Cli) -> None:
    result = cli("traces", "push", str(DATA / "small_traces.jsonl"), "--endpoint", "grpc://x:4317")

    cli.assert_one_line_error(result, "--endpoint 'grpc://x:4317' is not an OTLP/HTTP URL")


def test_a_runs_own_trace_file_reaches_the_receiver_whole(cli: Cli, receiver: Receiver) -> None:
    report = cli.inputs / "report"
    ran = cli("run", "--scenario", "shipment_failed", "--report-dir", str(report))
    expected = {
        (s.service, s.trace_id, s.span_id, s.parent_span_id or "", s.name)
        for s in read_spans(report / "traces.jsonl")
    }

    pushed = cli("traces", "push", str(report / "traces.jsonl"), "--endpoint", receiver.url)

    assert ran.returncode == 0, ran.stderr
    assert pushed.returncode == 0, pushed.stderr
    assert set(receiver.spans) == expected and len(receiver.spans) == len(expected)
    assert {service for service, *_ in expected} >= {"saga-compare-harness", "payment"}
