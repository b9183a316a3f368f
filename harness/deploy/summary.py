"""What `check` prints: per variant, the sagas, the open ones, and the runs that broke a rule."""

from __future__ import annotations

from rich.markup import escape

from harness.cli.console import Rows, out, print_table, say
from harness.deploy.check import VariantCheck


def print_check(source: str, results: list[VariantCheck]) -> None:
    """One table per deployment, then every open saga and every violated invariant by name."""
    say(f"checked {escape(source)}")
    table = Rows(["variant", "sagas", "terminal", "not terminal", "runs", "invariants"])
    for result in results:
        broken = sum(1 for run in result.runs if run.violated)
        verdict = "hold" if not broken else f"[red]violated in {broken} runs[/red]"
        table.add(
            result.variant,
            str(result.sagas),
            str(result.terminal),
            str(len(result.open)),
            str(len(result.runs)),
            verdict,
        )
    print_table(out, table)
    for result in results:
        for saga in result.open:
            where = (
                "lost: the deployment does not know it"
                if saga.lost
                else (f"stuck in {saga.stuck_in}" if saga.stuck_in else "not started yet")
            )
            say(f"{result.variant}: saga {escape(saga.saga_id)} not terminal ({where})")
        for run in result.runs:
            if run.violated:
                names = ", ".join(run.violated)
                say(f"{result.variant}: run {run.tag} ({escape(run.what)}) violated {names}")
    ok = all(result.ok for result in results)
    say("every saga terminal, every invariant held" if ok else "[red]check failed[/red]")
