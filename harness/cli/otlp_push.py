"""A trace file's spans as OTLP/HTTP protobuf requests: what Phoenix, Jaeger and a collector take.

A line of ``traces.jsonl`` is one OTLP ``TracesData`` object in the specification's JSON
encoding, with hex trace and span ids. Protobuf's generic JSON mapping reads ``bytes`` fields
as base64, so the ids are turned from hex into base64 first (a plain ``ParseDict`` would
silently decode the hex as base64 and send wrong ids); the ``resourceSpans`` are then batched
into ``ExportTraceServiceRequest`` messages of at most `BATCH_BYTES` each and POSTed as
``application/x-protobuf`` to ``<endpoint>/v1/traces``. Phoenix answers 415 to JSON.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, TracesData

from shared.validation import InvalidInput

TRACES_PATH = "/v1/traces"
BATCH_BYTES = 1_000_000
"""A request's size: receivers commonly cap a body at a few MB (the collector at 4 MB)."""
TIMEOUT_S = 30.0
PROTOBUF = "application/x-protobuf"
ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class PushFailed(Exception):
    """The receiver could not be reached or refused a request; the message says which."""


@dataclass(frozen=True)
class Pushed:
    spans: int
    traces: int
    requests: int


def traces_url(endpoint: str) -> str:
    """``http://host:4318`` or ``http://host:4318/v1/traces`` as the traces URL (the
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` convention); InvalidInput for anything else."""
    parts = urlsplit(endpoint.strip())
    try:
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        parts = parts._replace(netloc="")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise InvalidInput(
            f"--endpoint {endpoint!r} is not an OTLP/HTTP URL; pass http://HOST:PORT "
            "(the receiver's OTLP/HTTP port, e.g. http://127.0.0.1:6006 for Phoenix)"
        )
    path = parts.path.rstrip("/")
    if not path.endswith(TRACES_PATH):
        path += TRACES_PATH
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def resource_spans(lines: Iterable[str]) -> Iterator[tuple[int, ResourceSpans]]:
    """Each line's ``resourceSpans`` as protobuf messages, with the line's number; ValueError
    naming the line when one is not an OTLP JSON ``TracesData`` object."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = _hex_ids_to_base64(json.loads(line))
            parsed = json_format.ParseDict(data, TracesData())
        except (ValueError, TypeError, AttributeError, json_format.ParseError) as error:
            raise ValueError(f"line {number}: {_reason(error)}") from None
        for resource in parsed.resource_spans:
            yield number, resource


def batches(spans: Iterable[tuple[int, ResourceSpans]]) -> Iterator[ExportTraceServiceRequest]:
    """Requests of at most `BATCH_BYTES` (a single larger resource goes alone)."""
    request = ExportTraceServiceRequest()
    for _, resource in spans:
        if request.resource_spans and request.ByteSize() + resource.ByteSize() > BATCH_BYTES:
            yield request
            request = ExportTraceServiceRequest()
        request.resource_spans.append(resource)
    if request.resource_spans:
        yield request


def check(path: Path) -> None:
    """Read the whole file once before anything is sent: a bad line sends nothing."""
    with path.open(encoding="utf-8") as lines:
        for _ in resource_spans(lines):
            pass


def push(path: Path, url: str) -> Pushed:
    """Send every span of the file; PushFailed at the first request the receiver refuses."""
    spans = 0
    traces: set[bytes] = set()
    requests = 0
    with path.open(encoding="utf-8") as lines:
        for request in batches(resource_spans(lines)):
            post(url, request.SerializeToString())
            requests += 1
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    spans += len(scope.spans)
                    traces.update(span.trace_id for span in scope.spans)
    return Pushed(spans, len(traces), requests)


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": PROTOBUF}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            answer.read()
    except urllib.error.HTTPError as refused:
        said = " ".join(refused.read(300).decode(errors="replace").split())
        raise PushFailed(
            f"the receiver at {url} answered {refused.code} {refused.reason}"
            + (f" ({said})" if said else "")
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PushFailed(f"cannot reach {url} ({reason})") from None


def _hex_ids_to_base64(data: Any) -> Any:
    """The ids of every span and link, hex in the file, as the base64 ParseDict expects."""
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not an OTLP TracesData object")
    if "resourceSpans" not in data:
        raise ValueError("no resourceSpans: not an OTLP TracesData object")
    for resource in data["resourceSpans"]:
        for scope in resource.get("scopeSpans", []):
            for span in scope.get("spans", []):
                _convert(span)
                for link in span.get("links", []):
                    _convert(link)
    return data


def _convert(holder: dict[str, Any]) -> None:
    for name in ID_FIELDS:
        value = holder.get(name)
        if isinstance(value, str):
            holder[name] = base64.b64encode(bytes.fromhex(value)).decode()


def _reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON ({error.msg} at column {error.colno})"
    text = " ".join(str(error).split())
    return text[:200] if isinstance(error, ValueError) else "not an OTLP TracesData object"
