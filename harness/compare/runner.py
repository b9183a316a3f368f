"""Run a scenario on one variant: its own seeded namespace, one root span per saga, outcomes.

A run never wipes the variant's stores (they may be a live deployment's): it seeds a namespace
of its own (harness/compare/namespace.py), places the scenario's orders in it, and reads back only
its part of the state, in the scenario's ids.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from harness.compare.faulty import Faulty
from harness.compare.invariants import check_invariants
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.root_span import SAGA_REPEAT, root_span_name
from harness.compare.scenarios import SagaCase, Scenario
from shared.contracts import BusinessState, SagaOutcome, SagaPolicy, StepName, StepStatus
from shared.definition import SagaDefinition
from shared.runtime import SagaRuntime
from shared.telemetry import (
    SAGA_ID,
    SAGA_ORDER_ID,
    SAGA_OUTCOME,
    SAGA_REASON,
    SAGA_SCENARIO,
    SAGA_VARIANT,
    get_tracer,
)

_tracer = get_tracer("saga-compare.harness")


@dataclass(frozen=True)
class SagaRun:
    """One saga's outcome, its trace and the latency the harness measured around it."""

    case: SagaCase
    saga_id: str
    outcome: SagaOutcome
    trace_id: str
    duration_ms: float


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario's sagas on one variant, the state they left, and which run (1..K) it was."""

    scenario: Scenario
    variant: str
    sagas: tuple[SagaRun, ...]
    state: BusinessState
    definition: SagaDefinition
    repeat: int = 1

    @property
    def invariants(self) -> dict[str, bool]:
        sagas = [(r.case.order, r.outcome) for r in self.sagas]
        return check_invariants(self.definition, self.scenario.seed, self.state, sagas)


def new_run_tag() -> str:
    """A short suffix that keeps saga ids unique per run (broker dedup windows, workflow ids)."""
    return uuid.uuid4().hex[:8]


async def run_scenario(
    driven: Faulty[SagaRuntime],
    scenario: Scenario,
    *,
    run_tag: str | None = None,
    timeout_s: float = 60,
    repeat: int = 1,
) -> ScenarioRun:
    """Seed, start every saga of the scenario at once, wait for all, snapshot the state."""
    runtime = driven.runtime
    namespace = Namespace(run_tag or new_run_tag())
    await seed_namespace(runtime.domain, namespace, scenario.seed)
    runs = await asyncio.gather(
        *(
            run_saga(
                driven,
                case,
                scenario.policy,
                namespace.saga_id(case.order.order_id),
                timeout_s,
                scenario=scenario.name,
                repeat=repeat,
                namespace=namespace,
            )
            for case in scenario.sagas
        )
    )
    state = namespace.restrict(await runtime.domain.snapshot())
    definition = runtime.domain.definition
    return ScenarioRun(scenario, runtime.variant, tuple(runs), state, definition, repeat)


async def run_saga(
    driven: Faulty[SagaRuntime],
    case: SagaCase,
    policy: SagaPolicy,
    saga_id: str,
    timeout_s: float,
    *,
    scenario: str = "custom",
    repeat: int = 1,
    namespace: Namespace | None = None,
) -> SagaRun:
    """One saga under the harness's root span, which ends when the outcome is observed.

    With a namespace the order is placed in it and the outcome read back in the case's ids.
    The case's faults are installed for the saga before it starts (never sent with it).
    """
    runtime = driven.runtime
    attributes: dict[str, str | int] = {
        SAGA_ID: saga_id,
        SAGA_VARIANT: runtime.variant,
        SAGA_ORDER_ID: case.order.order_id,
        SAGA_SCENARIO: scenario,
        SAGA_REPEAT: repeat,
    }
    name = root_span_name(runtime.variant, case.order.order_id)
    with _tracer.start_as_current_span(name, attributes=attributes) as root:
        started = time.perf_counter()
        placed = case.order if namespace is None else namespace.order(case.order)
        await driven.start_saga(saga_id, placed, case.faults, policy)
        if case.cancel_during is not None:
            await _cancel_when_running(runtime, saga_id, case.cancel_during, timeout_s)
        if case.cancel_after_commit is not None:
            step = case.cancel_after_commit
            await _cancel_when_committed(runtime, saga_id, step, timeout_s)
        outcome = await runtime.wait(saga_id, timeout_s)
        if namespace is not None:
            outcome = namespace.outcome(outcome)
        duration_ms = (time.perf_counter() - started) * 1000
        root.set_attributes(_outcome_attributes(outcome))
        trace_id = f"{root.get_span_context().trace_id:032x}"
    return SagaRun(case, saga_id, outcome, trace_id, duration_ms)


async def _cancel_when_running(
    runtime: SagaRuntime, saga_id: str, step: StepName, timeout_s: float
) -> None:
    """The customer's cancel, sent once ``step`` is observed in flight (deterministic timing)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcome = await runtime.describe(saga_id)
        states = {s.step: s.status for s in outcome.steps}
        if states.get(step) is StepStatus.RUNNING or outcome.status.terminal:
            break
        await asyncio.sleep(0.02)
    await runtime.cancel_saga(saga_id)


async def _cancel_when_committed(
    runtime: SagaRuntime, saga_id: str, step: StepName, timeout_s: float
) -> None:
    """The customer's cancel, sent once ``step`` has committed in its service (observed in the
    service's step log) — before the saga has necessarily heard of it.

    Only the step log is polled: asking the saga's engine meanwhile (a query, an update) would
    touch the workflow while its local activities run, and the window between the commit and
    its report is what this case is about. A saga that never commits the step is cancelled
    at ``timeout_s`` (its expected outcome then tells what went wrong).
    """
    deadline = time.monotonic() + timeout_s
    service = runtime.domain.service_of(step)
    while time.monotonic() < deadline:
        if await service.step_status(saga_id, step) is StepStatus.DONE:
            break
        await asyncio.sleep(0.02)
    await runtime.cancel_saga(saga_id)


def _outcome_attributes(outcome: SagaOutcome) -> dict[str, str]:
    attributes = {SAGA_OUTCOME: outcome.status.value}
    if outcome.reason is not None:
        attributes[SAGA_REASON] = str(outcome.reason)
    return attributes
