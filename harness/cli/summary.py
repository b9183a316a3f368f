"""What a saga run prints: progress on stderr, then the summary, benchmark table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.cli.console import Rows, err, note, out, print_table, say
from harness.compare.results import Results, exit_code, latency_medians
from harness.compare.runner import ScenarioRun
from harness.session import VARIANTS


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


class RunProgress:
    """A rich progress bar on stderr on a terminal, one line per scenario elsewhere.

    Silent with --json.
    """

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=quiet or not err.is_terminal,
        )

    def __enter__(self) -> tuple[Progress, Callable[[Any, ScenarioRun], None]]:
        self.bar.__enter__()

        def advance(task: Any, run: ScenarioRun) -> None:
            self.bar.update(task, advance=1, description=f"{run.variant}: {run.scenario.name}")
            if not self.quiet and not self.bar.live.is_started:
                note(f"done {run.variant}: {run.scenario.name}")

        return self.bar, advance

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(None, None, None)


def print_summary(runs: list[ScenarioRun], doc: Results) -> None:
    """One row per scenario: the outcome (once when both agree), each variant's median saga."""
    table = Rows(["scenario", "outcome", "orch. ms", "chor. ms", "same", "invariants"], wrap=1)
    by_name: dict[str, dict[str, ScenarioRun]] = {}
    for r in runs:
        by_name.setdefault(r.scenario.name, {})[r.variant] = r
    medians = latency_medians(runs)
    for name, pair in by_name.items():
        labels = {v: outcome_label(r) for v, r in pair.items()}
        outcome = " / ".join(dict.fromkeys(labels.values()))
        timings = [milliseconds(medians.get((name, v))) for v in VARIANTS]
        diffs = doc.differences.get(name)
        same = "-" if diffs is None else ("[green]yes" if not diffs else "[red]NO")
        held = all(all(r.invariants.values()) for r in runs if r.scenario.name == name)
        table.add(name, outcome, *timings, same, "[green]hold" if held else "[red]BROKEN")
    print_table(out, table)
    for name, diffs in doc.differences.items():
        for line in diffs:
            out.print(f"[red]{name}[/red]: {escape(line)}", highlight=False)
    for d in doc.drift:
        where = f"{d.scenario} {d.variant} {d.order_id} (run {d.repeat})"
        for finding in d.findings:
            out.print(f"[red]drift[/red] {escape(where)}: {escape(finding)}", highlight=False)
    verdict = "[green]all checks held" if exit_code(doc) == 0 else "[red]some checks failed"
    say(verdict)


def outcome_label(run: ScenarioRun) -> str:
    labels = [
        s.outcome.status.value + (f" {s.outcome.reason!s}" if s.outcome.reason else "")
        for s in run.sagas
    ]
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    if len(labels) == 1:
        return labels[0]
    return ", ".join(f"{n}x {label}" for label, n in counts.items())


def milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"
