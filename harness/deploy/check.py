"""`saga-compare check`: is a deployment's state sound? Every saga terminal, every run conserved.

For each variant, through its front door: the orders the orders service holds that are not
terminal (with the step each is stuck in), then every run recorded in the ledger
(harness/deploy/ledger.py): its part of the state, the outcomes of the sagas it placed, and
the conservation invariants against the initial values it seeded. A run stopped before it
placed anything on a variant is not checked there; a saga a run placed that the deployment
does not know is reported lost (never a crash).
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from harness.compare.invariants import check_invariants
from harness.deploy.ledger import Entry
from shared.contracts import BusinessState, OrderRequest, SagaOutcome, SagaStatus, StepStatus
from shared.definitions import definition_named
from shared.runtime import SagaRuntime, SagaStuck, UnknownSaga
from shared.validation import InvalidInput

OUTCOME_WAIT_S = 5.0
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class OpenSaga(BaseModel):
    """A saga that is not terminal (or not known at all: lost)."""

    model_config = ConfigDict(frozen=True)

    saga_id: str
    order_id: str
    stuck_in: str | None = None
    lost: bool = False


class RunCheck(BaseModel):
    """One ledger entry on one variant: the invariants that failed (none: it holds)."""

    model_config = ConfigDict(frozen=True)

    tag: str
    what: str
    sagas: int
    violated: list[str]


class VariantCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: str
    sagas: int
    terminal: int
    open: list[OpenSaga]
    runs: list[RunCheck]

    @property
    def ok(self) -> bool:
        return not self.open and all(not run.violated for run in self.runs)


def parse_since(value: str | None, now: float | None = None) -> float | None:
    """``30s``, ``10m``, ``2h``, ``1d`` ago, or an ISO 8601 time, as epoch seconds."""
    if value is None:
        return None
    now = time.time() if now is None else now
    match = re.fullmatch(r"(\d+)([smhd])", value.strip())
    if match:
        return now - int(match[1]) * UNITS[match[2]]
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidInput(
            f"--since {value!r} is neither a duration (30s, 10m, 2h, 1d) nor an ISO time "
            "(2026-11-29T08:00); pass one of those"
        ) from None


async def outcome_of(runtime: SagaRuntime, saga_id: str) -> SagaOutcome | None:
    """The saga's outcome (terminal if it ended), or None when the variant does not know it."""
    try:
        return await runtime.wait(saga_id, OUTCOME_WAIT_S)
    except SagaStuck:
        return await _described(runtime, saga_id)
    except Exception as error:
        if _unknown(error):
            return None
        raise


async def _described(runtime: SagaRuntime, saga_id: str) -> SagaOutcome | None:
    """Its live state, or None when not even that knows it (never placed, or lost)."""
    try:
        return await runtime.describe(saga_id)
    except UnknownSaga:
        return None


def _unknown(error: Exception) -> bool:
    """KeyError (the choreography's projection), NOT_FOUND (Temporal)."""
    if isinstance(error, KeyError):
        return True
    status = getattr(error, "status", None)
    return getattr(status, "name", "") == "NOT_FOUND"


def in_flight(outcome: SagaOutcome) -> str | None:
    running = [s.step for s in outcome.steps if s.status is StepStatus.RUNNING]
    return str(running[-1]) if running else None


async def check_variant(runtime: SagaRuntime, runs: list[Entry], state_dir: Path) -> VariantCheck:
    """Open sagas of the whole variant, then each run of the ledger that placed sagas on it."""
    state = await runtime.domain.snapshot()
    open_sagas: dict[str, OpenSaga] = {}
    for record in state.orders:
        if record.status is SagaStatus.RUNNING:
            outcome = await outcome_of(runtime, record.saga_id)
            if outcome is None or not outcome.status.terminal:
                step = in_flight(outcome) if outcome is not None else None
                open_sagas[record.saga_id] = OpenSaga(
                    saga_id=record.saga_id, order_id=record.order_id, stuck_in=step
                )
    checks = []
    known = {record.saga_id for record in state.orders}
    for entry in runs:
        orders = entry.placed_orders(state_dir, runtime.variant, known)
        if orders:
            checks.append(await _check_run(runtime, entry, orders, state, open_sagas))
    terminal = sum(1 for r in state.orders if r.status.terminal)
    return VariantCheck(
        variant=runtime.variant,
        sagas=len(state.orders),
        terminal=terminal,
        open=sorted(open_sagas.values(), key=lambda s: s.saga_id),
        runs=checks,
    )


async def _check_run(
    runtime: SagaRuntime,
    entry: Entry,
    orders: list[OrderRequest],
    state: BusinessState,
    open_sagas: dict[str, OpenSaga],
) -> RunCheck:
    namespace = entry.namespace
    pairs: list[tuple[OrderRequest, SagaOutcome]] = []
    for order in orders:
        saga_id = namespace.saga_id(order.order_id)
        outcome = await outcome_of(runtime, saga_id)
        if outcome is None:
            open_sagas[saga_id] = OpenSaga(saga_id=saga_id, order_id=order.order_id, lost=True)
            outcome = SagaOutcome(
                saga_id=saga_id, order_id=order.order_id, status=SagaStatus.RUNNING
            )
        elif not outcome.status.terminal and saga_id not in open_sagas:
            open_sagas[saga_id] = OpenSaga(
                saga_id=saga_id, order_id=order.order_id, stuck_in=in_flight(outcome)
            )
        pairs.append((order, namespace.outcome(outcome)))
    # A run is judged by the definition its sagas ran (a run before an upgrade by v1's steps).
    ran = entry.definition
    definition = definition_named(ran) if ran is not None else runtime.domain.definition
    verdicts = check_invariants(definition, entry.seed, namespace.restrict(state), pairs)
    violated = [name for name, held in verdicts.items() if not held]
    return RunCheck(tag=entry.tag, what=entry.what, sagas=len(pairs), violated=violated)
