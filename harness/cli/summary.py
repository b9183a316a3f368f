"""What a command prints after its run: the benchmark table or the one JSON document.

Light on purpose (most commands import it for `print_json`): a saga run's progress and
summary, which need the comparison's results, are in run_summary.py.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.markup import escape

from harness.cli.console import Rows, note, out, print_table


def print_bench(doc: dict[str, Any]) -> None:
    """The benchmark: closed runs or the sweep, then verdicts, knees and cold starts."""
    rows = doc["measurements"]
    if doc["plan"]["model"] == "closed":
        table = Rows(
            ["style", "run", "sagas/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/saga", "peak MB"],
            title="benchmark",
        )
        for m in rows:
            table.add(m["style"], _run_label(m), *_figures(m))
    else:
        table = Rows(
            ["style", "rate", "sagas/s", "p50 ms", "p95 ms", "p99 ms", "CPU ms/saga", "in time"],
            title="benchmark (open model)",
        )
        for m in rows:
            figures = _figures(m)[:-1]
            table.add(m["style"], f"{m['rate']:g}/s", *figures, f"{m['completed_fraction']:.1%}")
    print_table(out, table)
    print_calibration(doc)
    for style, v in doc["verdict"].items():
        out.print(f"{style}: " + "; ".join(_verdict_parts(v)))
    for style, k in doc["knees"].items():
        out.print(f"{style}: knee {_knee_label(k)} (p95 <= {k['p95_bound_ms']:g} ms, 99% in time)")
    for e in (doc.get("endurance") or {}).values():
        slopes = ", ".join(f"{kind} {mb:+.1f}" for kind, mb in e["mb_per_min"].items())
        drift = "-" if e["p95_drift"] is None else f"{e['p95_drift']:+.0%}"
        met = "[green]met[/]" if e["met"] else "[red]MISSED[/]"
        out.print(
            f"{e['style']} at {e['rate']:g}/s after {e['settle_s']:.0f} s: MB/min {slopes};"
            f" p95 drift {drift} ({met})"
        )
    for style, c in doc["cold_start"].items():
        out.print(f"{style}: cold start to first saga {c['median']:.2f} s")
    if not doc["machine"]["quiet"]:
        load = doc["machine"]["load_before"][0]
        note(f"provisional: the machine was shared (load {load:.2f} at the start)")


def print_calibration(doc: dict[str, Any]) -> None:
    """One engine operation at a time in this run, and each saga run's sagas per busy core."""
    found = doc.get("calibration")
    if found:
        table = Rows(["operation", "n", "wall ms/op", "CPU ms/op"], title="calibration", wrap=0)
        for op in found["operations"]:
            table.add(escape(op["label"]), str(op["count"]), f"{op['wall_ms']:.2f}",
                      f"{op['cpu_ms_total']:.2f}")  # fmt: skip
        print_table(out, table)
    for m in doc["measurements"]:
        if m["kind"] == "saga" and m["tracing"] and m.get("sagas_per_cpu_s"):
            rate = "" if m["load"] == "closed" else f" at {m['rate']:g}/s"
            out.print(f"{m['style']}{rate}: {m['sagas_per_cpu_s']:.1f} sagas/s per busy core")


def _run_label(m: dict[str, Any]) -> str:
    if m["kind"] != "saga":
        return str(m["kind"])
    return "traced" if m["tracing"] else "untraced"


def _figures(m: dict[str, Any]) -> list[str]:
    return [
        f"{m['throughput']:.1f}",
        f"{m['p50_ms']:.0f}",
        f"{m['p95_ms']:.0f}",
        f"{m['p99_ms']:.0f}",
        f"{m['cpu_ms_per_saga']:.1f}",
        f"{sum(m['peak_rss_mb'].values()):.0f}",
    ]


def _verdict_parts(v: dict[str, Any]) -> list[str]:
    parts = []
    for floor, check in v["ratios"].items():
        met = "[green]met[/]" if check["met"] else "[red]MISSED[/]"
        parts.append(f"{check['median']:.2f}x its {floor} (>= {check['target']:.2f}x: {met})")
    cost = v["tracing_cost"]
    met = "[green]met[/]" if cost["met"] else "[red]MISSED[/]"
    parts.append(f"tracing costs {cost['median']:.0%} (<= {cost['target']:.0%}: {met})")
    return parts


def _knee_label(k: dict[str, Any]) -> str:
    if k["rate"] is None:
        return "below the sweep"
    return f"{k['rate']:g}/s" + ("" if k["saturated"] else " or more (not reached)")


def print_json(doc: dict[str, Any]) -> None:
    """The one JSON document of a `--json` run, written straight to stdout (never wrapped)."""
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
