"""Equivalence: the same scenario on both variants must end in the same outcomes and net state."""

from __future__ import annotations

from typing import Any

from harness.compare.invariants import NetState, net
from harness.compare.runner import ScenarioRun


def outcome_view(run: ScenarioRun) -> dict[str, dict[str, Any]]:
    """Each order's outcome, without the run-specific saga id."""
    return {
        r.case.order.order_id: {
            "status": r.outcome.status.value,
            "reason": str(r.outcome.reason) if r.outcome.reason else None,
            "failed_step": r.outcome.failed_step,
            "failed_compensations": sorted(str(s) for s in r.outcome.failed_compensations),
            "actions": [(a.action.value, a.result.value) for a in r.outcome.actions],
        }
        for r in run.sagas
    }


def comparable(run: ScenarioRun) -> dict[str, Any]:
    """What must match between variants: per order, or in aggregate for races."""
    state: NetState = net(run.state)
    if run.scenario.per_saga:
        return {"outcomes": outcome_view(run), "state": state.model_dump()}
    statuses = sorted(r.outcome.status.value for r in run.sagas)
    return {"outcomes": {s: statuses.count(s) for s in set(statuses)}, "state": state.aggregate()}


def differences(left: ScenarioRun, right: ScenarioRun) -> list[str]:
    """Field-by-field differences, as ``path: left != right`` lines; empty when equivalent."""
    lines: list[str] = []
    _diff(comparable(left), comparable(right), "", lines)
    return lines


def _diff(left: Any, right: Any, path: str, lines: list[str]) -> None:
    if isinstance(left, dict) and isinstance(right, dict):
        for key in sorted(set(left) | set(right), key=str):
            _diff(left.get(key), right.get(key), f"{path}.{key}" if path else str(key), lines)
    elif left != right:
        lines.append(f"{path}: {left!r} != {right!r}")
