"""Traces as a backend receives them: OTLP/HTTP protobuf, decoded with the opentelemetry-proto
classes, from the harness with OTEL_EXPORTER_OTLP_ENDPOINT set -- in-process services and
separate service processes alike."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from choreography.broker import NatsBroker, NatsSettings
from choreography.host import ChoreographySettings, kinds_of_process
from harness.compare import scenarios
from harness.session import open_session
from orchestration.server import TemporalServer, TemporalSettings
from shared.contracts import ServiceName
from shared.definitions import ORDERS_V1
from shared.servers import ManagedProcess
from shared.telemetry import read_jsonl

pytestmark = pytest.mark.asyncio

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-c", "from harness.cli.app import main; main()"]
SERVICES = {s.value for s in ServiceName}
HARNESS = "saga-compare-harness"
WORKER = "order-saga-worker"
STEPS = {"reserve_inventory", "charge_payment", "deduct_points", "create_shipment"}
STEPS |= {"complete_order"}
SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 4, 5


@dataclass
class Span:
    """One received span, flattened: ids in hex, attributes and resource as dicts."""

    trace_id: str
    span_id: str
    parent: str | None
    name: str
    kind: int
    attributes: dict[str, Any]
    links: list[tuple[str, str]]
    resource: dict[str, Any]

    @property
    def service(self) -> str:
        return str(self.resource["service.name"])


@dataclass
class Receiver:
    """A tiny OTLP/HTTP receiver on a free loopback port, decoding every request it gets."""

    spans: list[Span] = field(default_factory=list)
    paths: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, path: str, content_type: str, body: bytes) -> None:
        assert content_type == "application/x-protobuf"
        request = ExportTraceServiceRequest.FromString(body)
        with self.lock:
            self.paths.add(path)
            self.spans += list(_flatten(request))

    def traces(self) -> dict[str, list[Span]]:
        by_trace: dict[str, list[Span]] = defaultdict(list)
        for span in self.spans:
            by_trace[span.trace_id].append(span)
        return by_trace


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(items: Any) -> dict[str, Any]:
    return {item.key: _value(item.value) for item in items}


def _flatten(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield Span(
                    trace_id=span.trace_id.hex(),
                    span_id=span.span_id.hex(),
                    parent=span.parent_span_id.hex() or None,
                    name=span.name,
                    kind=span.kind,
                    attributes=_attributes(span.attributes),
                    links=[(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
                    resource=resource,
                )


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    received = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.handle(self.path, self.headers["Content-Type"], body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def saga_traces(received: Receiver) -> dict[str, list[Span]]:
    """Variant -> the spans of its one saga's trace, checked to be one whole tree."""
    found: dict[str, list[Span]] = {}
    for spans in received.traces().values():
        by_id = {span.span_id: span for span in spans}
        roots = [span for span in spans if span.parent is None]
        if len(roots) == 1 and roots[0].name.startswith("saga "):
            assert all(span.parent in by_id for span in spans if span is not roots[0])
            found[roots[0].attributes["saga.variant"]] = spans
    return found


def assert_choreography_trace(spans: list[Span], port: int | None = None) -> None:
    by_id = {span.span_id: span for span in spans}
    (root,) = [span for span in spans if span.parent is None]
    assert (root.service, root.resource["saga.variant"]) == (HARNESS, "choreography")
    assert root.resource["service.namespace"] == "saga-compare"
    assert root.attributes["saga.outcome"] == "COMPLETED"
    assert {span.service for span in spans} == SERVICES | {HARNESS}
    steps = {s.attributes["saga.step"]: s for s in spans if s.name in STEPS}
    assert set(steps) == STEPS
    assert steps["charge_payment"].service == "payment"
    for step in steps.values():
        assert step.attributes["saga.id"] == root.attributes["saga.id"]
        assert step.attributes["saga.variant"] == "choreography"
        assert step.attributes["saga.phase"] == "forward"
        assert step.attributes["saga.attempt"] == 1
        assert step.resource["saga.variant"] == "choreography"
    consumers = [span for span in spans if span.kind == SPAN_KIND_CONSUMER]
    sends = [span for span in spans if span.name.startswith("send ")]
    # The orders service's place command and the participants' deliveries; the tracker's
    # open no span.
    assert len(consumers) == 6
    sent = {span.attributes["messaging.message.id"] for span in sends}
    assert {span.attributes["messaging.message.id"] for span in consumers} <= sent
    # One producer span per message, its send, which the consumers' process spans are under.
    assert all(span.name.startswith("send ") for span in spans if span.kind == SPAN_KIND_PRODUCER)
    for span in consumers:
        sender = by_id[span.parent or ""]
        template = span.attributes["messaging.destination.template"]
        assert sender.kind == SPAN_KIND_PRODUCER and sender.name == f"send {template}"
    for span in consumers + sends:
        template = span.attributes["messaging.destination.template"]
        assert span.name.endswith(f" {template}") and "{saga_id}" in template
        assert span.attributes["messaging.system"] == "nats"
        assert span.attributes["messaging.message.conversation_id"] == root.attributes["saga.id"]
        assert span.attributes["server.address"] == "127.0.0.1"
        if port is not None:
            assert span.attributes["server.port"] == port
    for span in consumers:
        assert span.links == [(span.trace_id, span.parent)]
        assert span.attributes["messaging.consumer.group.name"].startswith(span.service)


def assert_orchestration_trace(spans: list[Span]) -> None:
    (root,) = [span for span in spans if span.parent is None]
    assert (root.service, root.resource["saga.variant"]) == (HARNESS, "orchestration")
    assert root.attributes["saga.outcome"] == "COMPLETED"
    by_service: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        by_service[span.service].add(span.name.split(":")[0])
    assert by_service[HARNESS] == {root.name, "StartUpdateWithStartWorkflow"}
    assert (
        by_service[WORKER]
        == {
            "HandleUpdate",
            "RunWorkflow",
            "StartActivity",
            "RunActivity",
            "CompleteWorkflow",
        }
        | STEPS
    )
    for span in spans:
        assert span.resource["saga.variant"] == "orchestration"
        if span.name in STEPS:
            assert by_service_of_parent(spans, span) == (WORKER, "RunActivity:" + span.name)
            assert span.attributes["saga.variant"] == "orchestration"


def by_service_of_parent(spans: list[Span], span: Span) -> tuple[str, str]:
    parent = next(s for s in spans if s.span_id == span.parent)
    return parent.service, parent.name


async def test_a_harness_run_sends_both_variants_traces_to_the_otlp_endpoint_and_the_file(
    receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    received, url = receiver
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": url}
    command = [*CLI, "run", "--scenario", "happy_path", "--report-dir", str(tmp_path), "--json"]

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert result.returncode == 0, result.stderr
    assert received.paths == {"/v1/traces"}
    traces = saga_traces(received)
    assert set(traces) == {"choreography", "orchestration"}
    assert_choreography_trace(traces["choreography"])
    assert_orchestration_trace(traces["orchestration"])
    in_file = {span["span_id"] for span in read_jsonl(tmp_path / "traces.jsonl")}
    assert in_file == {span.span_id for span in received.spans}


async def test_a_separate_service_process_sends_its_spans_under_its_own_name(
    receiver: tuple[Receiver, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received, url = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    suffix = f"-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        broker = await stack.enter_async_context(NatsBroker())
        nats = NatsSettings(url=broker.url)
        options = {
            "settings": ChoreographySettings(nats=nats, consumer_suffix=suffix),
            "services": [k for k in kinds_of_process(ORDERS_V1) if k != ServiceName.PAYMENT],
        }
        session = await stack.enter_async_context(
            open_session(
                ["choreography"], tmp_path, tmp_path / "t.jsonl", options={"choreography": options}
            )
        )
        argv = ["--service", "payment", "--data-dir", str(tmp_path / "choreography")]
        argv += ["--nats", broker.url, f"--consumer-suffix={suffix}"]
        payment = ManagedProcess("payment", [sys.executable, "-m", "choreography", *argv])
        await stack.enter_async_context(payment)

        async def ready() -> bool:
            return "ready" in payment.log_tail()

        await payment.wait_until(ready, what="ready", timeout=30)
        (run,) = await session.run([scenarios.get("happy_path")])
    # The payment process was stopped with SIGTERM and flushed its spans on the way out.

    assert run.sagas[0].outcome.status.value == "COMPLETED"
    traces = saga_traces(received)
    assert set(traces) == {"choreography"}
    assert_choreography_trace(traces["choreography"], port=int(broker.url.rsplit(":", 1)[1]))


async def test_a_separate_worker_process_sends_its_spans_under_its_own_name(
    receiver: tuple[Receiver, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    received, url = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    task_queue = f"otlp-{uuid.uuid4().hex[:6]}"
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(TemporalServer(ui=False))
        options = {
            "settings": TemporalSettings(address=server.address, task_queue=task_queue),
            "run_worker": False,
        }
        session = await stack.enter_async_context(
            open_session(
                ["orchestration"],
                tmp_path,
                tmp_path / "t.jsonl",
                options={"orchestration": options},
            )
        )
        env = {
            "SAGA_TEMPORAL_ADDRESS": server.address,
            "SAGA_TEMPORAL_TASK_QUEUE": task_queue,
            "SAGA_DATA_DIR": str(tmp_path / "orchestration"),
        }
        worker = ManagedProcess(
            "worker", [sys.executable, "-m", "orchestration.worker"], env={**os.environ, **env}
        )
        await stack.enter_async_context(worker)
        (run,) = await session.run([scenarios.get("happy_path")])

    assert run.sagas[0].outcome.status.value == "COMPLETED"
    traces = saga_traces(received)
    assert set(traces) == {"orchestration"}
    assert_orchestration_trace(traces["orchestration"])
