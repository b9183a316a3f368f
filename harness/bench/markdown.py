"""bench.md: the tables of a benchmark run, each figure the median of the repeats [min-max]."""

from __future__ import annotations

from typing import Any

from harness.bench.plots import run_label
from shared.definitions import definition_named

PROCESS_ORDER = ("harness", "services", "worker", "broker", "server", "database", "exporter")


def spread(m: dict[str, Any], name: str, fmt: str = "{:.1f}", part: str | None = None) -> str:
    """``median [min-max]`` of a field over the repeats (just the median for one repeat)."""
    value = m[name] if part is None else m[name].get(part, 0.0)
    text = fmt.format(value)
    if m.get("repeats", 1) <= 1:
        return text
    detail = m["spread"].get(name, {})
    if part is not None:
        detail = detail.get(part, {})
    if not detail or detail["min"] == detail["max"]:
        return text
    return f"{text} [{fmt.format(detail['min'])}-{fmt.format(detail['max'])}]"


def cpu_split(m: dict[str, Any]) -> str:
    """CPU ms per saga by process kind, e.g. ``harness 9.1, broker 1.2``."""
    sagas = max(m["sagas"], 1)
    parts = [
        f"{kind} {1000 * m['cpu_s'][kind] / sagas:.1f}"
        for kind in (*PROCESS_ORDER, "other")
        if m["cpu_s"].get(kind)
    ]
    return ", ".join(parts) or "-"


def peak_mb(m: dict[str, Any]) -> str:
    return f"{sum(m['peak_rss_mb'].values()):.0f}"


def machine_line(doc: dict[str, Any]) -> str:
    machine = doc["machine"]
    load = machine["load_before"][0]
    if machine["quiet"]:
        return f"Quiet machine ({machine['cpus']} CPUs, 1-minute load {load:.2f} at the start)."
    return (
        f"**Provisional, machine shared (load {load:.2f} at the start, "
        f"{machine['load_after'][0]:.2f} at the end; {machine['cpus']} CPUs)**: absolute "
        "figures are low and noisy; ratios within one run are what to compare."
    )


def closed_table(doc: dict[str, Any]) -> list[str]:
    lines = [
        "| style | run | sagas | conc. | sagas/s | p50 ms | p95 ms | p99 ms "
        "| CPU ms/saga | CPU ms/saga by process | peak MB | invariants |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in doc["measurements"]:
        if m["load"] != "closed":
            continue
        held = {True: "held", False: "**BROKEN**", None: "-"}[m["invariants_held"]]
        lines.append(
            f"| {m['style']} | {run_label(m)} | {m['sagas']:.0f} | {m['concurrency']:.0f} "
            f"| {spread(m, 'throughput')} | {spread(m, 'p50_ms', '{:.0f}')} "
            f"| {spread(m, 'p95_ms', '{:.0f}')} | {spread(m, 'p99_ms', '{:.0f}')} "
            f"| {spread(m, 'cpu_ms_per_saga')} | {cpu_split(m)} | {peak_mb(m)} | {held} |"
        )
    return lines


def verdict_table(doc: dict[str, Any]) -> list[str]:
    lines = [
        "| style | traced saga / floor | traced saga / durable floor | tracing cost |",
        "|---|---|---|---|",
    ]
    for style, v in doc["verdict"].items():
        cells = [_ratio(v["ratios"].get(kind)) for kind in ("floor", "durable floor")]
        cost = v["tracing_cost"]
        lines.append(f"| {style} | {cells[0]} | {cells[1]} | {_cost(cost)} |")
    return lines


def _ratio(check: dict[str, Any] | None) -> str:
    if check is None:
        return "-"
    met = "met" if check["met"] else "**MISSED**"
    return f"{_range(check, '{:.2f}x')} (target >= {check['target']:.2f}x: {met})"


def _cost(check: dict[str, Any]) -> str:
    met = "met" if check["met"] else "**MISSED**"
    return f"{_range(check, '{:.0%}')} (budget <= {check['target']:.0%}: {met})"


def _range(check: dict[str, Any], fmt: str) -> str:
    text = fmt.format(check["median"])
    if len(check["runs"]) > 1 and check["min"] != check["max"]:
        text += f" [{fmt.format(check['min'])}-{fmt.format(check['max'])}]"
    return text


def steps_table(doc: dict[str, Any], load: str) -> list[str]:
    rows = [m for m in doc["measurements"] if m["load"] == load and m["step_p95_ms"]]
    seen = {step for m in rows for step in m["step_p95_ms"]}
    ran = doc.get("conditions", {}).get("definition", "v1")  # runs before conditions: v1
    forward = definition_named(ran).spec.forward_steps
    steps = [s for s in forward if s in seen] + sorted(seen - set(forward))
    if not rows:
        return []
    lines = [
        "| style | run | " + " | ".join(steps) + " | spans/saga |",
        "|---|---|" + "---|" * len(steps) + "---|",
    ]
    for m in rows:
        label = run_label(m) if load == "closed" else f"{m['rate']:g}/s"
        cells = [spread(m, "step_p95_ms", "{:.1f}", step) for step in steps]
        lines.append(
            f"| {m['style']} | {label} | " + " | ".join(cells) + f" | {m['spans_per_saga']:.0f} |"
        )
    return lines


def sweep_table(doc: dict[str, Any]) -> list[str]:
    lines = [
        "| style | offered /s | served /s | in time | p50 ms | p95 ms | p99 ms "
        "| CPU ms/saga by process | peak MB | MB/min | invariants |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in doc["measurements"]:
        if m["load"] != "open":
            continue
        held = {True: "held", False: "**BROKEN**", None: "not final"}[m["invariants_held"]]
        lines.append(
            f"| {m['style']} | {m['rate']:g} | {spread(m, 'throughput')} "
            f"| {spread(m, 'completed_fraction', '{:.1%}')} | {spread(m, 'p50_ms', '{:.0f}')} "
            f"| {spread(m, 'p95_ms', '{:.0f}')} | {spread(m, 'p99_ms', '{:.0f}')} "
            f"| {cpu_split(m)} | {peak_mb(m)} | {m['rss_slope_mb_per_min']:+.1f} | {held} |"
        )
    return lines


def knee_table(doc: dict[str, Any]) -> list[str]:
    lines = ["| style | knee (sagas/s) | per run |", "|---|---|---|"]
    for style, k in doc["knees"].items():
        runs = ", ".join(_knee_text(run) for run in k["runs"])
        rate = "below the sweep" if k["rate"] is None else f"{k['rate']:g}"
        if k["rate"] is not None and not k["saturated"]:
            rate = f">= {rate} (not reached)"
        lines.append(f"| {style} | {rate} | {runs} |")
    return lines


def _knee_text(run: dict[str, Any]) -> str:
    if run["rate"] is None:
        return "none held"
    return f"{run['rate']:g}" + ("" if run["saturated"] else "+")


def cold_table(doc: dict[str, Any]) -> list[str]:
    if not doc["cold_start"]:
        return []
    lines = [
        "| style | first saga completed (s after start) | imports done | servers ready |",
        "|---|---|---|---|",
    ]
    for style, c in doc["cold_start"].items():
        runs = c["runs"]
        imports = sorted(r["imports_s"] for r in runs)[len(runs) // 2]
        ready = sorted(r["ready_s"] for r in runs)[len(runs) // 2]
        first = f"{c['median']:.2f}"
        if len(runs) > 1:
            first += f" [{c['min']:.2f}-{c['max']:.2f}]"
        lines.append(f"| {style} | {first} | {imports:.2f} | {ready:.2f} |")
    return lines


def endurance_table(doc: dict[str, Any]) -> list[str]:
    """Each long open run: every process kind's memory slope after settling, and p95 drift."""
    found = doc.get("endurance") or {}
    if not found:
        return []
    lines = [
        "| style | rate | settled after | MB/min by process after it | p95 drift | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for e in found.values():
        slopes = ", ".join(f"{kind} {mb:+.1f}" for kind, mb in e["mb_per_min"].items()) or "-"
        drift = "-" if e["p95_drift"] is None else f"{e['p95_drift']:+.0%}"
        if e["met"]:
            verdict = "met"
        else:
            missed = [f"{kind} grows" for kind in e["growing"]]
            if e["p95_drift"] is None:
                missed.append("too few sagas for a drift")
            elif e["p95_drift"] >= e["p95_drift_target"]:
                missed.append("p95 drifts")
            verdict = "**MISSED**: " + ", ".join(missed)
        lines.append(
            f"| {e['style']} | {e['rate']:g}/s | {e['settle_s']:.0f} s | {slopes} | {drift} "
            f"| {verdict} |"
        )
    target = next(iter(found.values()))
    lines += [
        "",
        f"Targets: no process grows more than {target['mb_per_min_target']:g} MB/min and p95 "
        f"drifts less than {target['p95_drift_target']:.0%} after the settling time "
        "(`bench-timeline.svg` draws each process's memory).",
    ]
    if not (doc.get("conditions") or {}).get("attached"):
        lines += [
            "",
            "The harness process hosts the client and the style's own code (the services, or "
            "the worker): its line is theirs too. Attached to a deployment from `saga-compare "
            "up` (`--attach`), each of its processes has a line of its own.",
        ]
    return lines


def calibration_table(doc: dict[str, Any]) -> list[str]:
    """One engine operation at a time: wall and CPU per operation, this process and server."""
    found = doc.get("calibration")
    if not found:
        return []
    lines = [
        "| operation | n | wall ms/op | CPU ms/op | CPU ms/op by process |",
        "|---|---|---|---|---|",
    ]
    for op in found["operations"]:
        split = ", ".join(
            f"{kind} {op['cpu_ms'][kind]:.2f}"
            for kind in (*PROCESS_ORDER, "other")
            if op["cpu_ms"].get(kind)
        )
        lines.append(
            f"| {op['label']} | {op['count']} | {op['wall_ms']:.2f} "
            f"| {op['cpu_ms_total']:.2f} | {split or '-'} |"
        )
    notes = [
        f"{LABEL_OF.get(key, key)}: not measured, {why}" for key, why in found["skipped"].items()
    ]
    notes.append(f"The calibration took {found['seconds']:.1f} s.")
    return [*lines, "", *notes]


LABEL_OF = {"postgres_tx": "Postgres transaction"}


def per_core_table(doc: dict[str, Any]) -> list[str]:
    """Sagas (or floor chains) per second of one busy core: what the CPU per saga allows."""
    rows = [m for m in doc["measurements"] if m.get("sagas_per_cpu_s")]
    if not rows:
        return []
    lines = ["| style | run | CPU ms/saga | sagas/s per busy core |", "|---|---|---|---|"]
    for m in rows:
        label = run_label(m) if m["load"] == "closed" else f"{m['rate']:g}/s"
        lines.append(
            f"| {m['style']} | {label} | {m['cpu_ms_per_saga']:.1f} | {m['sagas_per_cpu_s']:.1f} |"
        )
    return lines


def bench_markdown(doc: dict[str, Any], command: str) -> str:
    """The whole page: how it was produced, then every table that has rows."""
    plan = doc["plan"]
    parts = [
        "```bash",
        command,
        "```",
        "",
        machine_line(doc),
        f"Store: {plan['store']}. Repeats: {plan['repeat']} (each figure: median [min-max]).",
        "",
    ]
    if plan["model"] == "closed":
        parts += ["### Closed runs", "", *closed_table(doc), "", "### Verdict", ""]
        parts += [*verdict_table(doc), ""]
    else:
        bound = plan["p95_bound_ms"]
        parts += [
            "### Open-model sweep",
            "",
            f"Each rate for {plan['duration_s']:g} s; latency from each saga's scheduled "
            f"start; served = sagas completed per second from the first arrival to the last "
            f"end; in time = completed within {plan['deadline_s']:g} s; invariants are checked "
            "once every saga has ended (not final: some were still running when the harness "
            "stopped waiting). A rate holds when "
            f">= 99% were in time and p95 <= {bound:g} ms; the knee is the highest swept rate "
            "below the first that does not hold.",
            "",
            *sweep_table(doc),
            "",
            *knee_table(doc),
            "",
        ]
    steps = steps_table(doc, plan["model"])
    if steps:
        parts += ["### Per-step p95 (ms, step spans)", "", *steps, ""]
    lasting = endurance_table(doc)
    if lasting:
        parts += ["### Endurance: memory by process and p95 drift", "", *lasting, ""]
    calibration = calibration_table(doc)
    if calibration:
        parts += [
            "### Calibration: one engine operation at a time, on this machine, in this run",
            "",
            *calibration,
            "",
        ]
    per_core = per_core_table(doc)
    if per_core:
        parts += ["### Sagas per busy core (all processes' CPU)", "", *per_core, ""]
    cold = cold_table(doc)
    if cold:
        parts += ["### Cold start", "", *cold, ""]
    return "\n".join(parts)
