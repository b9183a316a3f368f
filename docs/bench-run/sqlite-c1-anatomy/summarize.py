"""The before/after table of ab.sh's runs: latencies from each bench.json, the end segment
from each run's spans (scripts/hop_anatomy.py).

Usage, from the repository root:
``python docs/bench-run/sqlite-c1-anatomy/summarize.py docs/bench-run/sqlite-c1-anatomy 7``
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, "scripts")
import hop_anatomy

SLEPT_A_POLL_MS = 90.0


def measurement(doc: dict[str, Any], kind: str, tracing: bool | None) -> dict[str, Any]:
    return next(
        m
        for m in doc["measurements"]
        if m["kind"] == kind and (tracing is None or m.get("tracing") is tracing)
    )


def row(folder: Path, run: str) -> str:
    doc = json.loads((folder / run / "bench.json").read_text())
    traced = measurement(doc, "saga", True)
    untraced = measurement(doc, "saga", False)
    floor = measurement(doc, "floor", None)
    traces = folder / run / "traces-run1-choreography.jsonl.gz"
    ends = [dict(path)["end"] for path in hop_anatomy.sagas(hop_anatomy.read_spans(traces), None)]
    slept = sum(end >= SLEPT_A_POLL_MS for end in ends)
    return (
        f"| {run} | {doc['conditions']['load_at_start'][0]:.2f}"
        f" | {traced['p50_ms']:.0f} / {traced['p95_ms']:.0f}"
        f" | {untraced['p50_ms']:.0f} / {untraced['p95_ms']:.0f} | {floor['p50_ms']:.0f}"
        f" | {slept} of {len(ends)} | {statistics.median(ends):.1f} |"
    )


def main() -> None:
    folder, pairs = Path(sys.argv[1]), int(sys.argv[2])
    print(
        "| run | 1-min load at start | traced p50 / p95 ms | untraced p50 / p95 ms"
        " | floor p50 ms | sagas whose end took >= 90 ms | end p50 ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for index in range(1, pairs + 1):
        for build in ("before", "after"):
            print(row(folder, f"{build}{index}"))


if __name__ == "__main__":
    main()
