"""Reading OTLP JSON lines trace files strictly: every span, or one clear error naming the line.

One line is one OTLP ``TracesData`` object (``{"resourceSpans": [...]}``) with hex ids, as
``shared.telemetry.JsonLinesSpanExporter`` writes them; several processes may append to one file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.telemetry import decode_value

TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")
SPAN_ID = re.compile(r"[0-9a-fA-F]{16}")


class TraceFileError(ValueError):
    """A trace file that is not OTLP JSON lines; the message names the line and the problem."""

    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass
class Span:
    """One finished span, flattened with its resource's ``service.name``."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    status: int
    service: str
    children: list[Span] = field(default_factory=list)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def read_spans(path: Path) -> list[Span]:
    """Every span in the file; raises ``TraceFileError`` at the first malformed line."""
    spans: list[Span] = []
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            spans.extend(_line_spans(number, raw))
    return spans


def _line_spans(number: int, raw: bytes) -> Iterator[Span]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TraceFileError(number, "not UTF-8 text (a binary file?)") from None
    if not text.strip():
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise TraceFileError(number, f"not JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise TraceFileError(number, f"{_kind(data)}, not an OTLP TracesData object")
    if "resourceSpans" not in data:
        raise TraceFileError(number, "no resourceSpans: not an OTLP TracesData object")
    for resource_spans in _list(number, data, "resourceSpans"):
        resource = _object(number, resource_spans, "a resourceSpans entry")
        service = str(_attributes(number, resource.get("resource", {})).get("service.name", ""))
        for scope_spans in _list(number, resource, "scopeSpans"):
            for span in _list(number, _object(number, scope_spans, "a scopeSpans entry"), "spans"):
                yield _span(number, _object(number, span, "a span"), service)


def _span(number: int, span: dict[str, Any], service: str) -> Span:
    name = span.get("name")
    if not isinstance(name, str):
        raise TraceFileError(number, "a span has no name")
    parent = span.get("parentSpanId") or None
    if parent is not None:
        _id(number, span, "parentSpanId", SPAN_ID, name)
    return Span(
        trace_id=_id(number, span, "traceId", TRACE_ID, name),
        span_id=_id(number, span, "spanId", SPAN_ID, name),
        parent_span_id=parent,
        name=name,
        kind=_int(number, span.get("kind", 0), f"span {name!r} kind"),
        start_ns=_int(number, span.get("startTimeUnixNano", 0), f"span {name!r} start time"),
        end_ns=_int(number, span.get("endTimeUnixNano", 0), f"span {name!r} end time"),
        attributes=_attributes(number, span),
        events=[_event(number, event) for event in _list(number, span, "events")],
        status=_status(number, span.get("status", {}), name),
        service=service,
    )


def _id(number: int, span: dict[str, Any], key: str, shape: re.Pattern[str], name: str) -> str:
    value = span.get(key)
    if value is None or value == "":
        raise TraceFileError(number, f"span {name!r} has no {key}")
    if not isinstance(value, str) or not shape.fullmatch(value):
        digits = 32 if shape is TRACE_ID else 16
        raise TraceFileError(
            number, f"span {name!r} {key} {value!r} is not {digits} hex digits (base64 ids?)"
        )
    return value.lower()


def _status(number: int, status: Any, name: str) -> int:
    code = _object(number, status, f"span {name!r} status").get("code", 0)
    return _int(number, code, f"span {name!r} status code")


def _event(number: int, event: Any) -> dict[str, Any]:
    event = _object(number, event, "a span event")
    return {
        "name": str(event.get("name", "")),
        "time_ns": _int(number, event.get("timeUnixNano", 0), "an event time"),
        "attributes": _attributes(number, event),
    }


def _attributes(number: int, holder: Any) -> dict[str, Any]:
    decoded: dict[str, Any] = {}
    for item in _list(number, _object(number, holder, "an attribute holder"), "attributes"):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise TraceFileError(number, "an attribute is not a {key, value} object")
        value = item.get("value", {})
        decoded[item["key"]] = decode_value(value) if isinstance(value, dict) else None
    return decoded


def _object(number: int, value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TraceFileError(number, f"{what} is {_kind(value)}, not an object")
    return value


def _list(number: int, holder: dict[str, Any], key: str) -> list[Any]:
    value = holder.get(key, [])
    if not isinstance(value, list):
        raise TraceFileError(number, f"{key} is {_kind(value)}, not a list")
    return value


def _int(number: int, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TraceFileError(number, f"{what} is {_kind(value)}, not an integer")
    try:
        return int(value)
    except ValueError:
        raise TraceFileError(number, f"{what} {value!r} is not an integer") from None


def _kind(value: Any) -> str:
    """How a JSON value reads in an error message."""
    names = {list: "a JSON array", dict: "an object", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
