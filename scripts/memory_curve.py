"""The memory curve of a ``scripts/memory_probe.py`` run, one row every few minutes.

    .venv/bin/python scripts/memory_curve.py docs/bench-run/memory-probe/orchestration-remote

Reads ``series.jsonl`` in the folder and writes ``curve.txt`` beside it: sagas ended, each
process's resident MB, the heap tracemalloc traced in the harness (and, where sampled, what
SQLite's allocator and tracemalloc itself hold, and Python's allocated blocks), the server's
own view (the Temporal dev server's Go heap: in use, live, idle but not returned, stacks;
its live heap objects, goroutines and SQLite files; or the NATS broker's ``/varz`` mem and
the bytes and messages JetStream stores), then each column's growth per saga ended (KB)
over the rows after the first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MB = 1024 * 1024
EVERY_S = 150.0


def columns(line: dict[str, Any]) -> dict[str, float]:
    """The figures of one sample, in MB (counts as they are)."""
    server = line["server"]
    out = {f"{kind} RSS": mb for kind, mb in sorted(line["rss_mb"].items())}
    out["py heap"] = line["traced_mb"]
    if "sqlite_mb" in line:
        out["sqlite mem"] = line["sqlite_mb"]
        out["tracemalloc own"] = line["tracemalloc_own_mb"]
        out["py blocks k"] = line["py_blocks"] / 1000
    if "memory_heapinuse" in server:
        out["go heap inuse"] = server["memory_heapinuse"] / MB
        out["go heap alloc"] = server["memory_heap"] / MB
        out["go idle kept"] = (server["memory_heapidle"] - server["memory_heapreleased"]) / MB
        out["go stacks"] = server["memory_stack"] / MB
        out["go objects k"] = server["memory_heap_objects"] / 1000
        out["goroutines"] = server["num_goroutines"]
    if "db_files_mb" in server:
        out["sqlite files"] = sum(server["db_files_mb"].values())
    if "jsz_bytes_mb" in server:
        out["nats varz mem"] = server["varz_mem_mb"]
        out["js stored"] = server["jsz_bytes_mb"]
        out["js msgs k"] = (server["jsz_messages"] or 0) / 1000
    return out


def curve(lines: list[dict[str, Any]]) -> str:
    rows = [lines[0]]
    for line in lines[1:]:
        if line["t_s"] - rows[-1]["t_s"] >= EVERY_S:
            rows.append(line)
    if rows[-1] is not lines[-1]:
        rows.append(lines[-1])
    names = list(columns(rows[-1]))
    head = ["t s", "ended", "load1", *names]
    table = [" | ".join(head)]
    for line in rows:
        figures = columns(line)
        cells = [f"{line['t_s']:.0f}", str(line["ended"]), f"{line['load1']:.1f}"]
        cells += [f"{figures.get(name, float('nan')):.1f}" for name in names]
        table.append(" | ".join(cells))
    first, last = rows[1] if len(rows) > 2 else rows[0], rows[-1]
    sagas = last["ended"] - first["ended"]
    growth = []
    if sagas > 0:
        a, b = columns(first), columns(last)
        growth.append(
            f"\nfrom t={first['t_s']:.0f} s to t={last['t_s']:.0f} s, {sagas} sagas ended:"
        )
        for name in names:
            if name in a and name in b and not name.endswith(("k", "goroutines")):
                delta = b[name] - a[name]
                growth.append(f"  {name}: {delta:+.1f} MB, {1024 * delta / sagas:+.1f} KB per saga")
    return "\n".join(table + growth) + "\n"


def main() -> None:
    folder = Path(sys.argv[1])
    text = (folder / "series.jsonl").read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    (folder / "curve.txt").write_text(curve(lines))
    print(curve(lines), end="")


if __name__ == "__main__":
    main()
