"""A chaos run's report: ``chaos.md`` (one "under fire" section), ``chaos.json``, ``chaos.svg``,
and the summary printed on the terminal."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from rich.markup import escape

from harness.chaos.analysis import VariantReport
from harness.chaos.chart import chaos_svg
from harness.chaos.experiment import ChaosDocument
from harness.cli.console import Rows, out, print_table, say


def rows(doc: ChaosDocument) -> list[tuple[str, list[str]]]:
    """The comparison, one row per finding, one column per variant."""
    reports = doc.variants

    def each(value: Callable[[VariantReport], object]) -> list[str]:
        return [str(value(report)) for report in reports]

    return [
        ("sagas terminal / submitted", each(lambda r: f"{r.terminal} / {r.submitted}")),
        ("ended by their deadline (timed_out: valid)", each(lambda r: r.timed_out)),
        ("stuck, by step", each(_stuck)),
        ("lost", each(lambda r: len(r.lost))),
        ("invariants", each(_invariants)),
        ("double charges", each(lambda r: r.double_charges)),
        ("duplicate / lost events", each(_events)),
        ("outcomes unlike the reference", each(_differences)),
        ("process deaths at crash points", each(lambda r: r.crash_point_deaths)),
        ("run time", each(lambda r: f"{r.duration_s:.0f} s")),
    ]


def _stuck(report: VariantReport) -> str:
    if not report.stuck_by_step:
        return "none"
    return ", ".join(f"{n} in {step}" for step, n in report.stuck_by_step.items())


def _invariants(report: VariantReport) -> str:
    broken = [name for name, ok in report.invariants.items() if not ok]
    return "hold" if not broken else "VIOLATED: " + ", ".join(broken)


def _events(report: VariantReport) -> str:
    if not report.events.checked:
        return "n/a (no event stream)"
    return f"{report.events.duplicates} / {report.events.lost}"


def _differences(report: VariantReport) -> str:
    extra = f" (+{report.timed_out_differences} timed out)" if report.timed_out_differences else ""
    return f"{len(report.differences)}{extra}"


def markdown(doc: ChaosDocument, command: str) -> str:
    names = [r.variant for r in doc.variants]
    lines = [
        f"# Chaos run: seed {doc.seed}, {doc.orders} orders, kills {', '.join(doc.kinds)}",
        "",
        f"Command: `{command}` (store: {doc.store}).",
        "",
        f"Rate: **{doc.rate:g} sagas/s**, {doc.rate_reason}. Reference: {doc.reference}.",
        "",
        "## Under fire",
        "",
        "The same orders, the same kill moments and the same downtimes for every variant "
        "(seconds after each variant's run started); a kind a variant does not have is `—`.",
        "",
        "| kill | at | down | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for planned in doc.schedule:
        targets = " | ".join(planned.targets.get(n) or "—" for n in names)
        lines.append(
            f"| {planned.kind} | {planned.at_s:.1f} s | {planned.down_s:.1f} s | {targets} |"
        )
    lines += ["", "| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows(doc)]
    lines += [
        "",
        "### Kills and recovery",
        "",
        "| variant | kill | process | killed at | back at | backlog drained after |",
        "|---|---|---|---|---|---|",
    ]
    for report in doc.variants:
        for kill in report.kills:
            lines.append(
                f"| {report.variant} | {kill.kind} | {kill.target} | {_s(kill.at_s)} "
                f"| {_s(kill.back_s)} | {_s(kill.drained_s, 'not drained')} |"
            )
    lines += [
        "",
        "### Latency (ms, from when each order was due until its end was observed)",
        "",
        "| variant | window | sagas | p50 | p95 | p99 |",
        "|---|---|---|---|---|---|",
    ]
    for report in doc.variants:
        for latency in report.latency:
            lines.append(
                f"| {report.variant} | {latency.window} | {latency.sagas} | {_ms(latency.p50_ms)} "
                f"| {_ms(latency.p95_ms)} | {_ms(latency.p99_ms)} |"
            )
    lines += ["", "![completions per second, kills marked](chaos.svg)", "", verdict(doc), ""]
    return "\n".join(lines)


def _s(value: float | None, missing: str = "—") -> str:
    return missing if value is None else f"{value:.1f} s"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def verdict(doc: ChaosDocument) -> str:
    if not doc.failures:
        return "Every saga terminal, every invariant held, nothing lost or duplicated."
    return "FAILED: " + "; ".join(f"{v}: {', '.join(f)}" for v, f in doc.failures.items())


def write(doc: ChaosDocument, folder: Path, command: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "chaos.json").write_text(doc.model_dump_json(indent=2), encoding="utf-8")
    (folder / "chaos.md").write_text(markdown(doc, command), encoding="utf-8")
    title = f"sagas ended per second; kills in red (seed {doc.seed}, {doc.rate:g}/s)"
    (folder / "chaos.svg").write_text(chaos_svg(doc.variants, title), encoding="utf-8")


def print_chaos(doc: ChaosDocument) -> None:
    say(f"rate {doc.rate:g} sagas/s: {escape(doc.rate_reason)}")
    for kill in doc.schedule:
        hit = ", ".join(f"{v}: {t or '—'}" for v, t in kill.targets.items())
        say(f"kill {kill.kind} at {kill.at_s:.1f}s for {kill.down_s:.1f}s ({hit})")
    table = Rows(["under fire", *(r.variant for r in doc.variants)], wrap=0)
    for label, values in rows(doc):
        table.add(escape(label), *(escape(v) for v in values))
    print_table(out, table)
    say(escape(verdict(doc)))


def json_document(doc: ChaosDocument) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(doc.model_dump_json())
    loaded["ok"] = not doc.failures
    return loaded
