"""The machine-readable result of a harness run (``--json`` and ``results.json``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from harness.equivalence import differences
from harness.invariants import net
from harness.runner import ScenarioRun


def saga_rows(run: ScenarioRun) -> list[dict[str, Any]]:
    state = net(run.state).model_dump()
    return [
        {
            "variant": run.variant,
            "scenario": run.scenario.name,
            "order_id": saga.case.order.order_id,
            "saga_id": saga.saga_id,
            "status": saga.outcome.status.value,
            "reason": saga.outcome.reason.value if saga.outcome.reason else None,
            "failed_step": saga.outcome.failed_step.value if saga.outcome.failed_step else None,
            "failed_compensations": [s.value for s in saga.outcome.failed_compensations],
            "expected": _expected(saga.case.expected),
            "steps": [
                {
                    "step": s.step.value,
                    "phase": s.phase.value,
                    "status": s.status.value,
                    "attempts": s.attempts,
                }
                for s in saga.outcome.steps
            ],
            "final_state": state,
            "trace_id": saga.trace_id,
            "duration_ms": round(saga.duration_ms, 3),
        }
        for saga in run.sagas
    ]


def _expected(expected: Any) -> dict[str, Any] | None:
    if expected is None:
        return None
    return {
        "status": expected.status.value,
        "reason": expected.reason.value if expected.reason else None,
    }


def document(runs: list[ScenarioRun]) -> dict[str, Any]:
    """``{"results": [...], "equivalent", "invariants", "differences", "expected_met"}``."""
    by_scenario: dict[str, dict[str, ScenarioRun]] = defaultdict(dict)
    for run in runs:
        by_scenario[run.scenario.name][run.variant] = run
    diffs = {
        name: differences(pair["orchestration"], pair["choreography"])
        for name, pair in by_scenario.items()
        if {"orchestration", "choreography"} <= set(pair)
    }
    invariants: dict[str, bool] = {}
    per_run: dict[str, dict[str, bool]] = {}
    for run in runs:
        checks = run.invariants
        per_run[f"{run.variant}/{run.scenario.name}"] = checks
        for name, held in checks.items():
            invariants[name] = invariants.get(name, True) and held
    rows = [row for run in runs for row in saga_rows(run)]
    return {
        "results": rows,
        "equivalent": all(not lines for lines in diffs.values()),
        "invariants": invariants,
        "differences": diffs,
        "invariants_by_run": per_run,
        "expected_met": all(_met(row) for row in rows),
    }


def _met(row: dict[str, Any]) -> bool:
    expected = row["expected"]
    return expected is None or (expected["status"], expected["reason"]) == (
        row["status"],
        row["reason"],
    )


def exit_code(doc: dict[str, Any]) -> int:
    """0 when everything held, 1 when an equivalence, invariant or expectation failed."""
    held = doc["equivalent"] and all(doc["invariants"].values()) and doc["expected_met"]
    return 0 if held else 1
