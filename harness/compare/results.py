"""The machine-readable result of a harness run (``--json`` and ``results.json``), as a model.

``results.json`` is ``Results.model_dump_json(indent=2)``: one row per saga (``results``), the
checks of every run (``runs``), the equivalence of both variants per scenario and run
(``comparisons``), each saga's drift from the flow its spec declares (``drift``), the run's
conditions (``conditions``) and the verdicts. ``schema_version`` changes when a field changes
meaning or goes away (a field added does not change it); files without it (version 1, one run,
before repeats) still load.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from harness.compare.conditions import RunConditions
from harness.compare.equivalence import differences as difference_lines
from harness.compare.invariants import NetState, net
from harness.compare.runner import SagaRun, ScenarioRun
from harness.compare.scenarios import Expected

SCHEMA_VERSION: Literal[2] = 2
V1_KEYS = frozenset({"invariants_by_run", "differences"})
"""Keys only version 1 files have (written before ``schema_version`` existed)."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expectation(_Model):
    status: str
    reason: str | None = None


class StepResult(_Model):
    step: str
    phase: str
    status: str
    attempts: int


class SagaResult(_Model):
    """One saga: its outcome, the state its run left behind, its trace and latency."""

    repeat: int = 1
    variant: str
    scenario: str
    order_id: str
    saga_id: str
    status: str
    reason: str | None
    failed_step: str | None = None
    failed_compensations: list[str] = []
    expected: Expectation | None = None
    steps: list[StepResult] = []
    final_state: NetState
    trace_id: str
    duration_ms: float

    @property
    def met(self) -> bool:
        """Whether the outcome is the one the catalogue expects (or nothing was expected)."""
        wanted = self.expected
        return wanted is None or (wanted.status, wanted.reason) == (self.status, self.reason)


class RunChecks(_Model):
    """The conservation invariants after one scenario's run on one variant."""

    repeat: int = 1
    variant: str
    scenario: str
    invariants: dict[str, bool]


class Comparison(_Model):
    """Both variants' runs of a scenario compared: empty ``differences`` means equivalent."""

    repeat: int = 1
    scenario: str
    differences: list[str]


class FlowDrift(_Model):
    """One saga whose trace differs from the flow the spec declares for its expected outcome."""

    repeat: int = 1
    variant: str
    scenario: str
    order_id: str
    findings: list[str]


class Results(_Model):
    """Everything one harness invocation found, over ``repeats`` runs of its scenarios."""

    schema_version: Literal[2] = SCHEMA_VERSION
    repeats: int = 1
    equivalent: bool
    invariants: dict[str, bool]
    expected_met: bool
    results: list[SagaResult]
    runs: list[RunChecks] = []
    comparisons: list[Comparison] = []
    conditions: RunConditions | None = None
    flows_checked: int = 0
    """Sagas whose traces were compared with the spec's flow (0: traces without step spans)."""
    drift: list[FlowDrift] = []

    @property
    def held(self) -> bool:
        checks = self.equivalent and all(self.invariants.values()) and self.expected_met
        return checks and not self.drift

    @property
    def differences(self) -> dict[str, list[str]]:
        """Per compared scenario, its difference lines over all runs (``run N:`` when K > 1)."""
        lines: dict[str, list[str]] = {}
        for c in self.comparisons:
            prefix = f"run {c.repeat}: " if self.repeats > 1 else ""
            lines.setdefault(c.scenario, []).extend(prefix + d for d in c.differences)
        return lines

    @model_validator(mode="before")
    @classmethod
    def _upgrade(cls, data: Any) -> Any:
        """Version 1 files (no ``schema_version``): one run, checks keyed ``variant/scenario``."""
        if isinstance(data, dict) and "schema_version" not in data and V1_KEYS & set(data):
            return _from_v1(data)
        return data


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    runs = [
        {"variant": key.split("/", 1)[0], "scenario": key.split("/", 1)[-1], "invariants": held}
        for key, held in data.get("invariants_by_run", {}).items()
    ]
    comparisons = [
        {"scenario": name, "differences": lines}
        for name, lines in data.get("differences", {}).items()
    ]
    upgraded: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for key in ("equivalent", "invariants", "expected_met", "results"):
        if key in data:
            upgraded[key] = data[key]
    return {**upgraded, "runs": runs, "comparisons": comparisons}


def saga_results(run: ScenarioRun) -> list[SagaResult]:
    """One row per saga of the run; each carries the run's net final state."""
    state = net(run.state)
    return [_saga_result(run, saga, state) for saga in run.sagas]


def _saga_result(run: ScenarioRun, saga: SagaRun, state: NetState) -> SagaResult:
    outcome = saga.outcome
    return SagaResult(
        repeat=run.repeat,
        variant=run.variant,
        scenario=run.scenario.name,
        order_id=saga.case.order.order_id,
        saga_id=saga.saga_id,
        status=outcome.status.value,
        reason=str(outcome.reason) if outcome.reason else None,
        failed_step=outcome.failed_step,
        failed_compensations=[str(s) for s in outcome.failed_compensations],
        expected=_expectation(saga.case.expected),
        steps=[
            StepResult(step=s.step, phase=s.phase.value, status=s.status.value, attempts=s.attempts)
            for s in outcome.steps
        ],
        final_state=state,
        trace_id=saga.trace_id,
        duration_ms=round(saga.duration_ms, 3),
    )


def _expectation(expected: Expected | None) -> Expectation | None:
    if expected is None:
        return None
    return Expectation(
        status=expected.status.value, reason=str(expected.reason) if expected.reason else None
    )


def document(runs: list[ScenarioRun], conditions: RunConditions | None = None) -> Results:
    """The results of every run: rows, per-run checks, per-run equivalence, verdicts; the
    drift of each saga's flow is checked once its traces are written (`with_drift`)."""
    rows = [row for run in runs for row in saga_results(run)]
    checks = [
        RunChecks(
            repeat=r.repeat, variant=r.variant, scenario=r.scenario.name, invariants=r.invariants
        )
        for r in runs
    ]
    comparisons = _comparisons(runs)
    invariants: dict[str, bool] = {}
    for check in checks:
        for name, held in check.invariants.items():
            invariants[name] = invariants.get(name, True) and held
    return Results(
        repeats=max((r.repeat for r in runs), default=1),
        equivalent=all(not c.differences for c in comparisons),
        invariants=invariants,
        expected_met=all(row.met for row in rows),
        results=rows,
        runs=checks,
        comparisons=comparisons,
        conditions=conditions,
    )


def with_drift(results: Results, checked: int, drift: list[FlowDrift]) -> Results:
    """The results with the flow check: how many sagas were checked, and those that drift."""
    return results.model_copy(update={"flows_checked": checked, "drift": drift})


def _comparisons(runs: list[ScenarioRun]) -> list[Comparison]:
    """Each scenario's two variants compared, run by run, where both ran."""
    pairs: dict[tuple[int, str], dict[str, ScenarioRun]] = defaultdict(dict)
    for run in runs:
        pairs[(run.repeat, run.scenario.name)][run.variant] = run
    return [
        Comparison(
            repeat=repeat,
            scenario=name,
            differences=difference_lines(pair["orchestration"], pair["choreography"]),
        )
        for (repeat, name), pair in pairs.items()
        if {"orchestration", "choreography"} <= set(pair)
    ]


def exit_code(results: Results) -> int:
    """0 when everything held, 1 when an equivalence, invariant, expectation or the flow
    (drift from the spec) failed."""
    return 0 if results.held else 1


def save_results(results: Results, path: Path) -> None:
    """Write ``results.json``: indented, fields in model order, readable in a diff."""
    path.write_text(results.model_dump_json(indent=2) + "\n", encoding="utf-8")


def load_results(path: Path) -> Results | None:
    """``results.json`` if the file exists; a ``ValueError`` naming the problem if it is invalid."""
    if not path.exists():
        return None
    try:
        return Results.model_validate_json(path.read_bytes())
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise ValueError(f"{path} is not a results file: {where}: {first['msg']}") from None


def latency_medians(runs: list[ScenarioRun]) -> dict[tuple[str, str], float]:
    """Per (scenario, variant): the median latency over every saga of every run, in ms."""
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    for run in runs:
        samples[(run.scenario.name, run.variant)] += [s.duration_ms for s in run.sagas]
    return {key: statistics.median(values) for key, values in samples.items()}
