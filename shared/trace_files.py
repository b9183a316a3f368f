"""The trace file: OTLP/JSON ``TracesData`` objects, one per line, trace and span ids in hex.

The OTLP specification's JSON encoding writes ids as hex strings (protobuf's generic JSON
mapping would write base64, which OTLP receivers reject): a collector, Jaeger or Phoenix
accepts each line as the body of a POST to ``/v1/traces`` with Content-Type application/json.
``read_jsonl`` flattens such a file back for the harness's trace analysis.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class JsonLinesSpanExporter(SpanExporter):
    """Appends one OTLP ``TracesData`` JSON object per batch, trace and span ids in hex."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        line = encode_line(spans) + "\n"
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


_quote = json.encoder.encode_basestring_ascii  # the C function json.dumps uses for strings
_KEY_PREFIXES: dict[str, str] = {}
_RESOURCES: dict[int, tuple[object, str]] = {}
_PAIRS: dict[tuple[str, type, Any], str] = {}
PAIR_CACHE = 8192
"""Encoded attribute pairs remembered; the cache starts over when full (ids keep changing)."""


def encode_line(spans: Iterable[ReadableSpan]) -> str:
    """The same ``TracesData`` as ``encode_spans``, written straight to compact JSON text.

    The exporter's hot path: a span is a handful of string joins instead of nested dicts and
    lists walked by the encoder, attribute keys and each resource are encoded once per process.
    """
    groups: dict[str, dict[str, list[str]]] = {}
    for span in spans:
        scope = span.instrumentation_scope
        by_scope = groups.setdefault(_resource_json(span.resource), {})
        by_scope.setdefault(scope.name if scope else "", []).append(_span_json(span))
    resources = []
    for resource, scopes in groups.items():
        encoded = ",".join(
            '{"scope":{"name":' + _quote(name) + '},"spans":[' + ",".join(items) + "]}"
            for name, items in scopes.items()
        )
        resources.append('{"resource":' + resource + ',"scopeSpans":[' + encoded + "]}")
    return '{"resourceSpans":[' + ",".join(resources) + "]}"


def _resource_json(resource: Any) -> str:
    """A resource's attributes as JSON, encoded once (resources live as long as the process)."""
    known = _RESOURCES.get(id(resource))
    if known is not None and known[0] is resource:
        return known[1]
    encoded = '{"attributes":' + _attributes_json(resource.attributes) + "}"
    _RESOURCES[id(resource)] = (resource, encoded)
    return encoded


def _span_json(span: ReadableSpan) -> str:
    context = span.get_span_context()
    assert context is not None
    status = span.status
    parts = [
        f'{{"traceId":"{context.trace_id:032x}","spanId":"{context.span_id:016x}"',
        f',"name":{_quote(span.name)},"kind":{span.kind.value + 1}',
        f',"startTimeUnixNano":"{span.start_time or 0}","endTimeUnixNano":"{span.end_time or 0}"',
        ',"attributes":',
        _attributes_json(span.attributes or {}),
        ',"events":[',
        ",".join(_event_json(event) for event in span.events),
        '],"links":[',
        ",".join(_link_json(link) for link in span.links),
        f'],"status":{{"code":{status.status_code.value},"message":',
        _quote(status.description or ""),
        "}",
    ]
    if span.parent is not None:
        parts.append(f',"parentSpanId":"{span.parent.span_id:016x}"')
    parts.append("}")
    return "".join(parts)


def _event_json(event: Any) -> str:
    return (
        f'{{"timeUnixNano":"{event.timestamp}","name":{_quote(event.name)},'
        f'"attributes":{_attributes_json(event.attributes or {})}}}'
    )


def _link_json(link: Any) -> str:
    return (
        f'{{"traceId":"{link.context.trace_id:032x}","spanId":"{link.context.span_id:016x}",'
        f'"attributes":{_attributes_json(link.attributes or {})}}}'
    )


def _attributes_json(attributes: Any) -> str:
    return "[" + ",".join(_attribute_json(k, v) for k, v in attributes.items()) + "]"


def _attribute_json(key: str, value: Any) -> str:
    """One attribute; a pair seen before (most are: the system, the templates ...) is reused."""
    pair = (key, type(value), value)  # True == 1 == 1.0: the type keeps them apart
    try:
        return _PAIRS[pair]
    except (KeyError, TypeError):
        pass
    encoded = _encode_attribute(key, value)
    if len(_PAIRS) >= PAIR_CACHE:
        _PAIRS.clear()
    if not isinstance(value, (list, tuple)):
        _PAIRS[pair] = encoded
    return encoded


def _encode_attribute(key: str, value: Any) -> str:
    prefix = _KEY_PREFIXES.get(key)
    if prefix is None:
        prefix = _KEY_PREFIXES[key] = '{"key":' + _quote(key) + ',"value":'
    kind = type(value)
    if kind is str:
        return prefix + '{"stringValue":' + _quote(value) + "}}"
    if kind is int:
        return prefix + '{"intValue":"' + str(value) + '"}}'
    if kind is bool:
        return prefix + ('{"boolValue":true}}' if value else '{"boolValue":false}}')
    return prefix + json.dumps(_any_value(value), separators=(",", ":")) + "}"


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
