"""Hand-made traces for unit tests: spans at chosen milliseconds, written as OTLP JSON lines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE_NS = 1_700_000_000_000_000_000


@dataclass
class TraceBuilder:
    """Spans of one trace; ``span`` returns the new span's id for children to name."""

    trace_id: str = "0af7651916cd43dd8448eb211c80319c"
    service: str = "saga-compare"
    spans: list[dict[str, Any]] = field(default_factory=list)

    def span(
        self,
        name: str,
        start_ms: float,
        end_ms: float,
        *,
        parent: str | None = None,
        kind: int = 1,
        status: int = 0,
        attrs: Mapping[str, str | int] | None = None,
    ) -> str:
        attributes = dict(attrs or {})
        span_id = f"{len(self.spans) + 1 + int(self.trace_id[:4], 16):016x}"
        encoded: dict[str, Any] = {
            "traceId": self.trace_id,
            "spanId": span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(BASE_NS + int(start_ms * 1e6)),
            "endTimeUnixNano": str(BASE_NS + int(end_ms * 1e6)),
            "attributes": [{"key": k, "value": _value(v)} for k, v in attributes.items()],
            "status": {"code": status},
        }
        if parent is not None:
            encoded["parentSpanId"] = parent
        self.spans.append(encoded)
        return span_id

    def line(self) -> str:
        resource = {"attributes": [{"key": "service.name", "value": _value(self.service)}]}
        scope = {"scope": {"name": "test"}, "spans": self.spans}
        return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [scope]}]})


def root(
    trace: TraceBuilder,
    variant: str,
    order_id: str,
    end_ms: float,
    extra: Mapping[str, str | int] | None = None,
) -> str:
    """The harness's root span as the runner names it, with the saga's attributes."""
    return trace.span(
        f"saga {variant} {order_id}",
        0,
        end_ms,
        attrs={
            "saga.id": f"{order_id}-t",
            "saga.variant": variant,
            "saga.order_id": order_id,
            "saga.scenario": "happy_path",
            "saga.outcome": "COMPLETED",
            **(extra or {}),
        },
    )


def step(
    trace: TraceBuilder,
    name: str,
    start_ms: float,
    end_ms: float,
    parent: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A shared step span with the canonical attributes (forward, first attempt by default)."""
    attributes: dict[str, Any] = {
        "saga.id": "o-t",
        "saga.variant": "choreography",
        "saga.step": name,
        "saga.phase": "forward",
        "saga.attempt": 1,
    }
    attributes.update(extra or {})
    return trace.span(name, start_ms, end_ms, parent=parent, attrs=attributes)


def write(path: Path, *traces: TraceBuilder) -> Path:
    path.write_text("".join(t.line() + "\n" for t in traces), encoding="utf-8")
    return path


def _value(value: str | int) -> dict[str, str]:
    return {"intValue": str(value)} if isinstance(value, int) else {"stringValue": value}
