"""The tracker's projection as SQL: the tables, and the statements folding an event in.

Pure functions from an event to statements (``Op``), so a whole fetched batch runs in one
transaction, consecutive identical statements as one ``executemany``. Statuses only move
forward (pending -> running -> done/failed/...), which makes the fold idempotent: a
redelivered batch changes nothing.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Sequence

from choreography.events import (
    COMPENSATED,
    COMPENSATION_FAILED,
    DONE,
    FAILED,
    REFUSED,
    Event,
    Kind,
    previous_actor,
    sender_step,
)
from shared.contracts import Phase, Reason, SagaOutcome, SagaStatus, StepName, StepStatus
from shared.saga import applies, compensation_of, forward_of
from shared.store import Dialect, Migration, Tx, migrations

MIGRATIONS: tuple[Migration, ...] = migrations(
    "tracker",
    """
    CREATE TABLE saga_state (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        failed_step TEXT,
        phase TEXT NOT NULL,
        pivot_passed INTEGER NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION NOT NULL,
        deadline_at DOUBLE PRECISION NOT NULL,
        placed TEXT NOT NULL,
        traceparent TEXT,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE saga_steps (
        saga_id TEXT NOT NULL,
        step TEXT NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        PRIMARY KEY (saga_id, step)
    );
    CREATE TABLE interventions (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        reason TEXT,
        failed_compensations TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        note TEXT
    );
    CREATE INDEX saga_state_open ON saga_state (phase, status)
    """,
)
"""The tracker's tables, in the orders store."""

FORWARD, COMPENSATING, CLOSED = "forward", "compensating", "closed"
SETTLED = (StepStatus.DONE.value, StepStatus.NOOP.value, StepStatus.FAILED.value)
_SETTLED_BY = {StepStatus.DONE: StepStatus.DONE, StepStatus.NOOP: StepStatus.REJECTED}
"""A step interrupted in flight takes its status from its compensation: undone, or refused."""

STARTS: dict[Kind, StepName] = {
    Kind.ORDER_PLACED: StepName.RESERVE_INVENTORY,
    Kind.INVENTORY_RESERVED: StepName.CHARGE_PAYMENT,
    Kind.PAYMENT_CHARGED: StepName.DEDUCT_POINTS,
    Kind.POINTS_DEDUCTED: StepName.CREATE_SHIPMENT,
    Kind.POINTS_SKIPPED: StepName.CREATE_SHIPMENT,
    Kind.SHIPPING_CREATED: StepName.COMPLETE_ORDER,
}
"""Which forward step an event sets in flight (its trigger reached the next service)."""
_DONE_STEP = {kind: step for step, kind in DONE.items()}
_FAILED_STEP = {kind: step for step, kind in FAILED.items()}
_COMPENSATED = {kind: step for step, kind in COMPENSATED.items()}
_COMPENSATION_FAILED = {kind: step for step, kind in COMPENSATION_FAILED.items()}
_REFUSED = {kind: step for step, kind in REFUSED.items()}


Op = tuple[str, tuple[object, ...]]
"""One statement of the projection; a batch's statements run grouped (``executemany``)."""

PROGRESS = (
    "UPDATE saga_steps SET"
    " status = CASE WHEN step = ? THEN ? ELSE 'running' END,"
    " attempts = CASE WHEN step = ? THEN ? ELSE attempts END"
    " WHERE saga_id = ? AND ((step = ? AND status IN ('pending', 'running'))"
    " OR (step = ? AND status = 'pending'))"
)
"""A forward step ends (done/failed) and the step it triggers is in flight, in one statement."""


def progress(saga_id: str, finished: str, status: StepStatus, attempts: int, started: str) -> Op:
    """`PROGRESS` with its parameters (a step name may be "": no such step)."""
    return PROGRESS, (finished, status.value, finished, attempts, saga_id, finished, started)


def fold(event: Event, dialect: Dialect) -> tuple[list[Op], bool]:
    """The statements folding one event into its saga; True if an end may now be decided."""
    saga_id, kind = event.saga_id, event.kind
    started = STARTS.get(kind)
    if kind is Kind.PAYMENT_CHARGED and not applies(StepName.DEDUCT_POINTS, event.order):
        started = None  # points answers ``skipped``; shipping starts on that
    finished = _DONE_STEP.get(kind) or _FAILED_STEP.get(kind)
    if started is not None or finished is not None:
        status = StepStatus.DONE if kind in _DONE_STEP else StepStatus.FAILED
        ops: list[Op] = [progress(saga_id, finished or "", status, event.attempts, started or "")]
        if kind in _FAILED_STEP and finished is not StepName.COMPLETE_ORDER:
            assert finished is not None
            ops += [begin_compensation(saga_id, event.reason, finished)]
            ops += optional(expect_compensation(saga_id, finished))
        elif kind in _FAILED_STEP:
            ops += [_failed_past_pivot(saga_id, StepName.COMPLETE_ORDER)]
        return ops, kind in _FAILED_STEP
    if kind is Kind.ORDER_CANCEL_REQUESTED:
        return [begin_compensation(saga_id, event.reason, None)], True
    ops = []
    if kind in _COMPENSATED or kind in _COMPENSATION_FAILED:
        compensation = _COMPENSATED.get(kind) or _COMPENSATION_FAILED[kind]
        ops += _compensated(saga_id, compensation, event, dialect)
    elif kind in _REFUSED:
        refused = _REFUSED[kind]
        ops += [_settle_forward(saga_id, refused, StepStatus.REJECTED, event.attempts, dialect)]
    sender = sender_step(kind)
    following = previous_actor(event.trail, sender) if sender is not None else None
    if following is not None:
        ops += optional(expect_compensation(saga_id, following))
    return ops, True


def _failed_past_pivot(saga_id: str, step: StepName) -> Op:
    """A step after the pivot failed: nothing to undo, but the saga names it (as orchestrated)."""
    return (
        "UPDATE saga_state SET failed_step = ?, updated_at = ? WHERE saga_id = ?"
        " AND failed_step IS NULL",
        (step.value, time.time(), saga_id),
    )


def optional(op: Op | None) -> list[Op]:
    return [] if op is None else [op]


def _settle_forward(
    saga_id: str, step: StepName, status: StepStatus, attempts: int, dialect: Dialect
) -> Op:
    """A forward step still in flight ends with its compensation (or refusal)."""
    return (
        f"UPDATE saga_steps SET status = ?, attempts = {dialect.greatest('attempts', '?', '1')}"
        " WHERE saga_id = ? AND step = ? AND status = 'running'",
        (status.value, attempts, saga_id, step.value),
    )


def pass_pivot(saga_ids: list[str]) -> list[Op]:
    """After the pivot the saga only goes forward; a cancel that lost the race is void."""
    marks = ",".join("?" * len(saga_ids))
    return [
        (
            "UPDATE saga_state SET pivot_passed = 1, updated_at = ?,"
            " phase = CASE WHEN phase = ? AND failed_step IS NULL THEN ? ELSE phase END,"
            " reason = CASE WHEN phase = ? AND failed_step IS NULL THEN NULL ELSE reason END"
            f" WHERE saga_id IN ({marks})",
            (time.time(), COMPENSATING, FORWARD, COMPENSATING, *saga_ids),
        ),
        (
            f"DELETE FROM saga_steps WHERE saga_id IN ({marks}) AND phase = ?"
            " AND status = 'running'",
            (*saga_ids, Phase.COMPENSATE.value),
        ),
    ]


def begin_compensation(saga_id: str, reason: Reason | None, failed_step: StepName | None) -> Op:
    """The first cause wins: a failure or a cancel starts the compensation phase once."""
    return (
        "UPDATE saga_state SET phase = ?, reason = ?, failed_step = ?, updated_at = ?"
        " WHERE saga_id = ? AND phase = ? AND pivot_passed = 0",
        (
            COMPENSATING,
            reason.value if reason else None,
            failed_step.value if failed_step else None,
            time.time(),
            saga_id,
            FORWARD,
        ),
    )


def expect_compensation(saga_id: str, step: StepName) -> Op | None:
    """Show the compensation the chain waits on as running (what a stuck saga is stuck in)."""
    compensation = compensation_of(step)
    if compensation is None:
        return None
    return (
        "INSERT INTO saga_steps (saga_id, step, phase, status, attempts, seq)"
        " SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), 'running', 0,"
        " coalesce(max(seq), 0) + 1 FROM saga_steps WHERE saga_id = ? HAVING count(*) > 0"
        " ON CONFLICT DO NOTHING",
        (saga_id, compensation.value, Phase.COMPENSATE.value, saga_id),
    )


def _compensated(saga_id: str, compensation: StepName, event: Event, dialect: Dialect) -> list[Op]:
    status = event.status or StepStatus.FAILED
    settled = _SETTLED_BY.get(status, StepStatus.FAILED)
    return [
        *optional(expect_compensation(saga_id, forward_of(compensation))),
        (
            "UPDATE saga_steps SET status = ?, attempts = ? WHERE saga_id = ? AND step = ?"
            " AND status = 'running'",
            (status.value, event.attempts, saga_id, compensation.value),
        ),
        _settle_forward(saga_id, forward_of(compensation), settled, 0, dialect),
    ]


def run(tx: Tx, ops: Sequence[Op]) -> None:
    """Run a batch's statements in order, consecutive identical ones in one ``executemany``."""
    for sql, group in itertools.groupby(ops, key=lambda op: op[0]):
        params = [op[1] for op in group]
        if len(params) == 1:
            tx.execute(sql, params[0])
        else:
            tx.executemany(sql, params)


def record_end(tx: Tx, outcome: SagaOutcome, status: SagaStatus) -> None:
    """In the transaction that closes the order: the projection, and the queue if needed."""
    tx.execute(
        "UPDATE saga_state SET status = ?, phase = ?, updated_at = ? WHERE saga_id = ?",
        (status.value, CLOSED, time.time(), outcome.saga_id),
    )
    if status is SagaStatus.NEEDS_INTERVENTION:
        tx.execute(
            "INSERT INTO interventions (saga_id, order_id, reason, failed_compensations, at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                outcome.saga_id,
                outcome.order_id,
                outcome.reason.value if outcome.reason else None,
                json.dumps([step.value for step in outcome.failed_compensations]),
                time.time(),
            ),
        )
