"""Who a span names (routing), where it goes (one pipeline, file and OTLP), the file format."""

from __future__ import annotations

import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import propagate, trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind

from shared.telemetry import (
    HARNESS,
    SAGA_VARIANT,
    WORKER,
    CurrentSpan,
    JsonLinesSpanExporter,
    Tracing,
    get_tracer,
    read_jsonl,
    service_component,
    service_scope,
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


class Receiver:
    """A tiny OTLP/HTTP receiver on a free loopback port that keeps each decoded request."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, ExportTraceServiceRequest.FromString(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


def resource_names(tracing: Tracing) -> dict[str, dict[str, Any]]:
    """Finished span name -> its resource's attributes."""
    assert tracing.memory is not None
    return {
        span.name: dict(span.resource.attributes) for span in tracing.memory.get_finished_spans()
    }


def test_an_otlp_endpoint_in_the_environment_gets_protobuf_spans_with_their_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing = Tracing(HARNESS)
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        with tracing.exporting():
            with service_scope(service_component("payment")):
                tracing.tracer("t").start_span("charge").end()
            tracing.tracer("t").start_span("saga o-9", attributes={SAGA_VARIANT: "x"}).end()

    services = {
        (path, span.name, _resource(rs)["service.name"], _resource(rs).get("saga.variant"))
        for path, request in receiver.requests
        for rs in request.resource_spans
        for scope in rs.scope_spans
        for span in scope.spans
    }
    assert services == {
        ("/v1/traces", "charge", "payment", "choreography"),
        ("/v1/traces", "saga o-9", "saga-compare-harness", "x"),
    }


def _resource(resource_spans: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value for a in resource_spans.resource.attributes}


def test_a_session_writes_the_file_and_otlp_through_one_batch_processor(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tracing = Tracing(HARNESS)
    with Receiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        with tracing.exporting(jsonl=tmp_path / "traces.jsonl"):
            sinks = [type(sink).__name__ for sink in tracing.pipeline.sinks]
            with pytest.raises(RuntimeError, match="one exporter pipeline"):
                tracing.attach(jsonl=tmp_path / "second.jsonl")
            tracing.tracer("t").start_span("saga o-1").end()

    assert sinks == ["JsonLinesSpanExporter", "OTLPSpanExporter"]
    assert [span["name"] for span in read_jsonl(tmp_path / "traces.jsonl")] == ["saga o-1"]
    assert len(receiver.requests) == 1
    assert not (tmp_path / "second.jsonl").exists()


def test_sessions_one_after_another_each_get_their_own_file(tmp_path: Path) -> None:
    tracing = Tracing(HARNESS)
    for name in ("first", "second"):
        with tracing.exporting(jsonl=tmp_path / f"{name}.jsonl", otlp=False):
            tracing.tracer("t").start_span(f"saga {name}").end()

    for name in ("first", "second"):
        spans = read_jsonl(tmp_path / f"{name}.jsonl")
        assert [span["name"] for span in spans] == [f"saga {name}"]


def test_a_service_scope_names_the_spans_of_the_tasks_started_inside_it() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracer = tracing.tracer("t")

    async def later() -> None:
        await asyncio.sleep(0)
        tracer.start_span("in a task").end()

    async def main() -> None:
        with service_scope(service_component("inventory")):
            task = asyncio.create_task(later())
        tracer.start_span("after the scope").end()
        await task

    asyncio.run(main())

    resources = resource_names(tracing)
    assert resources["in a task"]["service.name"] == "inventory"
    assert resources["in a task"]["saga.variant"] == "choreography"
    assert resources["in a task"]["service.namespace"] == "saga-compare"
    assert resources["after the scope"]["service.name"] == "saga-compare-harness"


def test_a_module_level_tracer_starts_spans_on_the_process_router_with_no_proxy_around(
    span_exporter: InMemorySpanExporter,
) -> None:
    tracer = get_tracer("made at import")

    manager = tracer.start_as_current_span("charge_payment")
    with service_scope(service_component("payment")), manager as span:
        assert trace.get_current_span() is span

    assert isinstance(manager, CurrentSpan)  # the router's own, not the API proxy's generator
    [finished] = span_exporter.get_finished_spans()
    assert finished.name == "charge_payment"
    assert finished.resource.attributes["service.name"] == "payment"


def test_an_unscoped_span_belongs_to_the_component_of_its_local_parent() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracer = tracing.tracer("t")

    with tracing.tracer("t", WORKER).start_as_current_span("RunActivity:charge_payment"):
        tracer.start_span("charge_payment").end()
    with tracer.start_as_current_span("saga o-1", attributes={SAGA_VARIANT: "orchestration"}):
        tracer.start_span("StartWorkflow:OrderSaga").end()

    resources = resource_names(tracing)
    assert resources["charge_payment"]["service.name"] == "order-saga-worker"
    assert resources["StartWorkflow:OrderSaga"]["service.name"] == "saga-compare-harness"
    assert resources["StartWorkflow:OrderSaga"]["saga.variant"] == "orchestration"


def test_a_remote_parent_does_not_decide_the_component() -> None:
    tracing = Tracing(HARNESS, memory=True)
    carrier: dict[str, str] = {}
    with tracing.tracer("t", WORKER).start_as_current_span("elsewhere"):
        propagate.inject(carrier)

    with service_scope(service_component("points")):
        tracing.tracer("t").start_span("process", context=propagate.extract(carrier)).end()

    assert resource_names(tracing)["process"]["service.name"] == "points"


def test_the_harness_has_one_resource_per_variant_and_no_variant_of_its_own() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracer = tracing.tracer("t")

    for variant in ("choreography", "orchestration"):
        tracer.start_span(f"saga {variant}", attributes={SAGA_VARIANT: variant}).end()
    tracer.start_span("saga none").end()

    resources = resource_names(tracing)
    assert resources["saga choreography"]["saga.variant"] == "choreography"
    assert resources["saga orchestration"]["saga.variant"] == "orchestration"
    assert "saga.variant" not in resources["saga none"]


def test_every_component_shares_the_one_pipeline_and_sampler() -> None:
    tracing = Tracing(HARNESS, memory=True)
    providers = [tracing.provider(c) for c in (HARNESS, WORKER, service_component("orders"))]

    tracing.set_enabled(False)
    tracing.tracer("t", WORKER).start_span("untraced").end()
    tracing.set_enabled(True)

    for provider in providers:
        assert provider._active_span_processor._span_processors == (tracing.pipeline,)
    assert tracing.memory is not None and tracing.memory.get_finished_spans() == ()


def test_a_span_started_with_tracing_off_is_its_parents_context_and_nothing_is_exported() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracer = tracing.tracer("t")
    with tracer.start_as_current_span("saga o-1") as root:
        tracing.set_enabled(False)
        child = tracer.start_span("charge_payment", attributes={"saga.id": "s-1"})
        with tracer.start_as_current_span("process") as current:
            inside = propagate_carrier()
    orphan = tracer.start_span("root while off")
    tracing.set_enabled(True)

    assert not child.is_recording() and not current.is_recording()
    assert child.get_span_context() == root.get_span_context()
    assert inside["traceparent"].split("-")[1] == f"{root.get_span_context().trace_id:032x}"
    assert orphan.get_span_context().is_valid and not orphan.get_span_context().trace_flags.sampled
    assert [s.name for s in finished(tracing)] == ["saga o-1"]


def test_a_child_of_an_unsampled_remote_parent_is_not_recorded_with_tracing_on() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracing.set_enabled(False)
    with tracing.tracer("t").start_as_current_span("untraced elsewhere"):
        carrier = propagate_carrier()
    tracing.set_enabled(True)

    parent = propagate.extract(carrier)
    assert not tracing.recording(parent) and tracing.recording()
    with service_scope(service_component("points")):
        span = tracing.tracer("t").start_span("process", context=parent)

    assert not span.is_recording()
    assert finished(tracing) == []


def test_an_error_inside_a_current_span_is_recorded_and_a_cancel_only_ends_it() -> None:
    tracing = Tracing(HARNESS, memory=True)
    tracer = tracing.tracer("t", WORKER)

    with pytest.raises(ValueError), tracer.start_as_current_span("fails"):
        raise ValueError("no stock")
    with pytest.raises(asyncio.CancelledError), tracer.start_as_current_span("cut off"):
        raise asyncio.CancelledError
    with tracer.start_as_current_span("left open", end_on_exit=False) as open_span:
        pass

    spans = {s.name: s for s in finished(tracing)}
    assert spans["fails"].status.description == "ValueError: no stock"
    assert [e.name for e in spans["fails"].events] == ["exception"]
    assert spans["cut off"].status.is_unset and not spans["cut off"].events
    assert "left open" not in spans and open_span.is_recording()


def test_a_tracer_fixed_to_the_worker_names_it_in_any_scope_and_drops_like_the_router() -> None:
    tracing = Tracing(HARNESS, memory=True)
    worker = tracing.tracer("t", WORKER)
    with service_scope(service_component("payment")), worker.start_as_current_span("RunActivity"):
        pass
    tracing.set_enabled(False)
    with worker.start_as_current_span("RunWorkflow") as dropped:
        pass
    tracing.set_enabled(True)

    [span] = finished(tracing)
    assert span.name == "RunActivity"
    assert span.resource.attributes["service.name"] == WORKER.service
    assert not dropped.is_recording() and dropped.get_span_context().is_valid


def propagate_carrier() -> dict[str, str]:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def finished(tracing: Tracing) -> list[Any]:
    assert tracing.memory is not None
    return list(tracing.memory.get_finished_spans())
