"""scripts/hop_anatomy.py: a saga's critical path split into segments, from its spans."""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).parents[4] / "scripts" / "hop_anatomy.py"
MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hop_anatomy", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def span(name: str, span_id: str, parent: str, start_ms: float, end_ms: float) -> dict[str, Any]:
    return {
        "traceId": "t1",
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str(T0 + int(start_ms * MS)),
        "endTimeUnixNano": str(T0 + int(end_ms * MS)),
        "attributes": [{"key": "saga.id", "value": {"stringValue": "b0-run1"}}],
    }


def one_saga() -> list[dict[str, Any]]:
    """Root 0-100; place sent 2-3, processed 4-10; its event sent 11-12 under the desk's
    process span, processed 20-25 with the step 21-23; the step's event sent 30-31."""
    root = span("saga choreography b0", "r", "", 0, 100)
    del root["parentSpanId"]
    return [
        root,
        span("send front.order.place.{saga_id}", "s1", "r", 2, 3),
        span("process front.order.place.{saga_id}", "p1", "s1", 4, 10),
        span("send saga.order.placed.{saga_id}", "s2", "p1", 11, 12),
        span("process saga.order.placed.{saga_id}", "p2", "s2", 20, 25),
        span("reserve_inventory", "st", "p2", 21, 23),
        span("send saga.inventory.reserved.{saga_id}", "s3", "st", 30, 31),
    ]


def write(path: Path, spans: list[dict[str, Any]]) -> None:
    line = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}) + "\n"
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(line.encode()))
    else:
        path.write_text(line)


@pytest.mark.parametrize("name", ["traces.jsonl", "traces.jsonl.gz"])
def test_each_gap_of_the_path_is_a_segment_between_the_spans_around_it(
    tmp_path: Path, name: str
) -> None:
    hop_anatomy = load_script()
    path = tmp_path / name
    write(path, one_saga())

    (segments,) = hop_anatomy.sagas(hop_anatomy.read_spans(path), None)

    assert segments == [
        ("front", 2.0),
        ("order.place: send", 1.0),
        ("order.place: deliver", 1.0),
        ("order.place: process", 6.0),
        ("order.placed: relay", 1.0),
        ("order.placed: send", 1.0),
        ("order.placed: deliver", 8.0),
        ("order.placed: process", 5.0),
        ("inventory.reserved: relay", 7.0),
        ("inventory.reserved: send", 1.0),
        ("end", 69.0),
        ("saga (root span)", 100.0),
    ]


def test_a_file_without_a_saga_trace_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "traces.jsonl"
    write(path, [span("send x.{saga_id}", "s", "", 0, 1)])

    assert load_script().main([str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"error: no complete saga trace in {path}"
