"""Per-step latency of a measured run, read from the spans it exported.

Every step span carries ``saga.step`` and ``saga.phase`` in both styles (shared/steps.py),
and ``saga.id`` names its saga: the spans of one run are those whose saga id carries the
run's tag. The trace file only grows, so a run reads just the lines appended since it began.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.report.traces import percentile
from shared.telemetry import SAGA_ID, SAGA_PHASE, SAGA_STEP

STEP_KEYS = (SAGA_STEP, SAGA_PHASE, SAGA_ID)


class SpanTail:
    """Reads the spans appended to a trace file since the last mark."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        """From now on: remember where the file ends."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def spans(self) -> list[dict[str, Any]]:
        """Each span appended since the mark: its name, attributes and duration (ms)."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            text = stream.read().decode("utf-8", errors="replace")
        found: list[dict[str, Any]] = []
        for line in filter(str.strip, text.splitlines()):
            for resource in json.loads(line).get("resourceSpans", []):
                for scope in resource.get("scopeSpans", []):
                    found += [_flat(span) for span in scope.get("spans", [])]
        return found


def _flat(span: dict[str, Any]) -> dict[str, Any]:
    attributes = {
        item["key"]: next(iter(item.get("value", {}).values()), None)
        for item in span.get("attributes", [])
    }
    start = int(span.get("startTimeUnixNano", 0))
    end = int(span.get("endTimeUnixNano", 0))
    return {
        "trace": span.get("traceId", ""),
        "name": span["name"],
        "attributes": attributes,
        "ms": (end - start) / 1e6,
    }


def step_p95(spans: list[dict[str, Any]], tag: str) -> dict[str, float]:
    """p95 duration (ms) of each forward step's span, over the sagas whose id ends in ``tag``."""
    durations: dict[str, list[float]] = defaultdict(list)
    for span in spans:
        attributes = span["attributes"]
        if not all(key in attributes for key in STEP_KEYS):
            continue
        if attributes[SAGA_PHASE] != "forward" or not str(attributes[SAGA_ID]).endswith(tag):
            continue
        durations[str(attributes[SAGA_STEP])].append(span["ms"])
    return {step: percentile(values, 95) for step, values in durations.items()}


def spans_per_saga(spans: list[dict[str, Any]], tag: str, sagas: int) -> float:
    """Spans in the traces of the run's sagas (a trace with a span of one of them), per saga."""
    if sagas == 0:
        return 0.0
    traces = {s["trace"] for s in spans if str(s["attributes"].get(SAGA_ID, "")).endswith(tag)}
    return sum(1 for s in spans if s["trace"] in traces) / sagas
