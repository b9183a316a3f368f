"""The interleaved A/B runs of this folder as a table: p50 per round and the medians.

.venv/bin/python docs/bench-run/pull-consumer/summarize.py docs/bench-run/pull-consumer/c1
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

KINDS = (("floor", False), ("durable floor", False), ("saga", True), ("saga", False))


def main(folder: Path) -> None:
    runs: dict[tuple[str, str, bool], list[dict[str, float]]] = {}
    for path in sorted(folder.glob("*.json"), key=lambda p: (p.stem[0], int(p.stem[2:]))):
        for m in json.loads(path.read_text())["measurements"]:
            runs.setdefault((path.stem[0], m["kind"], m["tracing"]), []).append(m)
    print(
        "| run | A p50 per round (ms) | B p50 per round (ms) | median p50 A / B | median p95 A / B"
        " | median sagas/s A / B |"
    )
    print("|---|---|---|---|---|---|")
    for kind, traced in KINDS:
        a, b = runs[("A", kind, traced)], runs[("B", kind, traced)]
        name = f"{kind}{' traced' if traced else ''}"
        cells = [" ".join(f"{m['p50_ms']:.1f}" for m in side) for side in (a, b)]
        medians = [
            " / ".join(f"{statistics.median(m[key] for m in side):.1f}" for side in (a, b))
            for key in ("p50_ms", "p95_ms", "throughput")
        ]
        print(f"| {name} | {cells[0]} | {cells[1]} | {' | '.join(medians)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
