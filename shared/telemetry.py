"""Tracing set-up for every process, the canonical span attributes, and a hex OTLP JSON exporter.

One call per process (`configure_tracing`) picks the exporter: in-memory for tests, an OTLP
JSON lines file for the harness, OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

SAGA_ID = "saga.id"
SAGA_VARIANT = "saga.variant"
SAGA_STEP = "saga.step"
SAGA_PHASE = "saga.phase"
SAGA_ATTEMPT = "saga.attempt"
SAGA_OUTCOME = "saga.outcome"
SAGA_ORDER_ID = "saga.order_id"
SAGA_SCENARIO = "saga.scenario"
SAGA_REASON = "saga.reason"
FAULT_EVENT = "saga.fault_injected"
ROOT_SPAN_PREFIX = "saga "
"""The harness's root span per saga is named ``saga <order_id>``."""

ExporterKind = Literal["memory", "jsonl", "otlp", "none"]


class SwitchableSampler(Sampler):
    """Samples every root span while on; off, spans are non-recording (benchmarks' baseline)."""

    def __init__(self) -> None:
        self.enabled = True
        self._on = ParentBased(root=ALWAYS_ON)
        self._off = ALWAYS_OFF

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        sampler = self._on if self.enabled else self._off
        return sampler.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"SwitchableSampler(enabled={self.enabled})"


@dataclass
class Tracing:
    """A configured provider; ``memory`` holds finished spans when the exporter is in-memory."""

    provider: TracerProvider
    memory: InMemorySpanExporter | None = None

    def tracer(self, name: str) -> trace.Tracer:
        return self.provider.get_tracer(name)

    def flush(self) -> None:
        self.provider.force_flush()

    def set_enabled(self, enabled: bool) -> None:
        """Turn recording on or off for the whole process (the benchmark's tracing-off run)."""
        sampler = self.provider.sampler
        if isinstance(sampler, SwitchableSampler):
            sampler.enabled = enabled

    def shutdown(self) -> None:
        self.provider.shutdown()


def configure_tracing(
    service_name: str,
    variant: str,
    *,
    exporter: ExporterKind | None = None,
    path: Path | None = None,
    set_global: bool = True,
) -> Tracing:
    """Build the process's tracer provider; the default is OTLP if an endpoint is set."""
    kind = exporter or _default_kind(path)
    provider = _provider(service_name, variant, set_global)
    tracing = Tracing(provider)
    if kind == "memory":
        tracing.memory = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(tracing.memory))
    elif kind == "jsonl":
        if path is None:
            raise ValueError("the jsonl exporter needs a path")
        provider.add_span_processor(BatchSpanProcessor(JsonLinesSpanExporter(path)))
    elif kind == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if set_global and trace.get_tracer_provider() is not provider:
        trace.set_tracer_provider(provider)
    return tracing


def _provider(service_name: str, variant: str, set_global: bool) -> TracerProvider:
    """A new provider, or the process's global one: OTel allows setting the global only once."""
    current = trace.get_tracer_provider()
    if set_global and isinstance(current, TracerProvider):
        return current
    resource = Resource.create({"service.name": service_name, SAGA_VARIANT: variant})
    return TracerProvider(resource=resource, sampler=SwitchableSampler())


def _default_kind(path: Path | None) -> ExporterKind:
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return "jsonl" if path is not None else "none"


def step_attributes(
    saga_id: str, variant: str, step: str, phase: str, attempt: int
) -> dict[str, str | int]:
    """The canonical attributes every step span carries, in both variants."""
    return {
        SAGA_ID: saga_id,
        SAGA_VARIANT: variant,
        SAGA_STEP: step,
        SAGA_PHASE: phase,
        SAGA_ATTEMPT: attempt,
    }


class JsonLinesSpanExporter(SpanExporter):
    """Appends one OTLP ``TracesData`` JSON object per batch, trace and span ids in hex."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = json.dumps(encode_spans(spans), separators=(",", ":")) + "\n"
        # One write per line with O_APPEND: several processes can share one file.
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as out:
                out.write(line)
        except OSError:
            return SpanExportResult.FAILURE  # the run's folder is gone; nothing left to trace
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def encode_spans(spans: Iterable[ReadableSpan]) -> dict[str, Any]:
    """OTLP/JSON ``TracesData`` grouped by resource and scope (proto3 JSON mapping, hex ids)."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for span in spans:
        resource_key = json.dumps(dict(span.resource.attributes), sort_keys=True, default=str)
        scope = span.instrumentation_scope
        scope_name = scope.name if scope else ""
        group = groups.setdefault(
            (resource_key, scope_name),
            {"resource": span.resource, "scope": scope_name, "spans": []},
        )
        group["spans"].append(_encode_span(span))
    by_resource: dict[str, dict[str, Any]] = {}
    for (resource_key, _), group in groups.items():
        entry = by_resource.setdefault(
            resource_key,
            {
                "resource": {"attributes": _attributes(group["resource"].attributes)},
                "scopeSpans": [],
            },
        )
        entry["scopeSpans"].append({"scope": {"name": group["scope"]}, "spans": group["spans"]})
    return {"resourceSpans": list(by_resource.values())}


def _encode_span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    encoded: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "name": span.name,
        "kind": span.kind.value + 1,  # OTLP counts from UNSPECIFIED=0, the SDK from INTERNAL=0
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": _attributes(span.attributes or {}),
        "events": [
            {
                "timeUnixNano": str(event.timestamp),
                "name": event.name,
                "attributes": _attributes(event.attributes or {}),
            }
            for event in span.events
        ],
        "links": [
            {
                "traceId": f"{link.context.trace_id:032x}",
                "spanId": f"{link.context.span_id:016x}",
                "attributes": _attributes(link.attributes or {}),
            }
            for link in span.links
        ],
        "status": {"code": span.status.status_code.value, "message": span.status.description or ""},
    }
    if span.parent is not None:
        encoded["parentSpanId"] = f"{span.parent.span_id:016x}"
    return encoded


def _attributes(attributes: Any) -> list[dict[str, Any]]:
    return [{"key": key, "value": _any_value(value)} for key, value in dict(attributes).items()]


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def decode_value(value: dict[str, Any]) -> Any:
    """The Python value of an OTLP JSON ``AnyValue``."""
    if "intValue" in value:
        return int(value["intValue"])
    if "arrayValue" in value:
        return [decode_value(item) for item in value["arrayValue"].get("values", [])]
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every span in an OTLP JSON lines file, flattened with its resource's attributes."""
    spans: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as lines:
        for line in filter(str.strip, lines):
            for resource_spans in json.loads(line).get("resourceSpans", []):
                resource = _decode_attrs(resource_spans.get("resource", {}).get("attributes", []))
                for scope_spans in resource_spans.get("scopeSpans", []):
                    for span in scope_spans.get("spans", []):
                        spans.append(_flatten(span, resource))
    return spans


def _decode_attrs(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {item["key"]: decode_value(item.get("value", {})) for item in attributes}


def _flatten(span: dict[str, Any], resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "trace_id": span["traceId"],
        "span_id": span["spanId"],
        "parent_span_id": span.get("parentSpanId") or None,
        "name": span["name"],
        "kind": int(span.get("kind", 0)),
        "start_ns": int(span.get("startTimeUnixNano", 0)),
        "end_ns": int(span.get("endTimeUnixNano", 0)),
        "attributes": _decode_attrs(span.get("attributes", [])),
        "events": [
            {
                "name": event["name"],
                "time_ns": int(event.get("timeUnixNano", 0)),
                "attributes": _decode_attrs(event.get("attributes", [])),
            }
            for event in span.get("events", [])
        ],
        "links": [
            {"trace_id": link["traceId"], "span_id": link["spanId"]}
            for link in span.get("links", [])
        ],
        "status": int(span.get("status", {}).get("code", 0)),
        "resource": resource,
    }
