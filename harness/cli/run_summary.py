"""What a saga run prints: progress on stderr while it runs, then one row per scenario."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.cli.console import Rows, err, note, out, print_table, say
from harness.compare.results import Results, exit_code, latency_medians
from harness.compare.runner import ScenarioRun
from harness.variants import VARIANTS


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
