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

from choreography.events import Event, Role, Routing
from shared.contracts import Phase, Reason, SagaOutcome, SagaStatus, StepStatus
from shared.saga import SagaSpec
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


def fold(event: Event, routing: Routing, dialect: Dialect) -> tuple[list[Op], bool]:
    """The statements folding one event into its saga; True if an end may now be decided."""
    saga_id, saga = event.saga_id, routing.saga
    meaning = routing.meaning(event.kind)
    if meaning is None:
        return [], False
    role, step = meaning.role, meaning.step
    started = routing.starts(event.kind)
    if started is not None or role in (Role.DONE, Role.FAILED):
        finished = step if role in (Role.DONE, Role.FAILED) else None
        status = StepStatus.DONE if role is Role.DONE else StepStatus.FAILED
        ops: list[Op] = [progress(saga_id, finished or "", status, event.attempts, started or "")]
        if role is Role.DONE and finished == saga.forward_steps[-1]:
            ops += [complete(saga_id)]
        if role is Role.FAILED and finished is not None and saga.after_pivot(finished):
            ops += [_failed_past_pivot(saga_id, finished)]
        elif role is Role.FAILED and finished is not None:
            ops += [begin_compensation(saga_id, event.reason, finished)]
            ops += optional(expect_compensation(saga, saga_id, finished))
        return ops, role is Role.FAILED
    if role is Role.CANCEL_REQUESTED:
        return [begin_compensation(saga_id, event.reason, None)], True
    assert step is not None
    ops = []
    if role in (Role.COMPENSATED, Role.COMPENSATION_FAILED):
        ops += _compensated(saga, saga_id, step, event, dialect)
    elif role is Role.REFUSED:
        ops += [_settle_forward(saga_id, step, StepStatus.REJECTED, event.attempts, dialect)]
    following = routing.previous_actor(event.trail, step)
    if following is not None:
        ops += optional(expect_compensation(saga, saga_id, following))
    return ops, True


def complete(saga_id: str) -> Op:
    """The last forward step is done: the saga is COMPLETED."""
    return (
        "UPDATE saga_state SET status = ?, phase = ?, reason = NULL, updated_at = ?"
        " WHERE saga_id = ? AND status = ?",
        (SagaStatus.COMPLETED.value, CLOSED, time.time(), saga_id, SagaStatus.RUNNING.value),
    )


def _failed_past_pivot(saga_id: str, step: str) -> Op:
    """A step after the pivot failed: nothing to undo, but the saga names it (as orchestrated)."""
    return (
        "UPDATE saga_state SET failed_step = ?, updated_at = ? WHERE saga_id = ?"
        " AND failed_step IS NULL",
        (step, time.time(), saga_id),
    )


def optional(op: Op | None) -> list[Op]:
    return [] if op is None else [op]


def _settle_forward(
    saga_id: str, step: str, status: StepStatus, attempts: int, dialect: Dialect
) -> Op:
    """A forward step still in flight ends with its compensation (or refusal)."""
    return (
        f"UPDATE saga_steps SET status = ?, attempts = {dialect.greatest('attempts', '?', '1')}"
        " WHERE saga_id = ? AND step = ? AND status = 'running'",
        (status.value, attempts, saga_id, step),
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


def begin_compensation(saga_id: str, reason: Reason | None, failed_step: str | None) -> Op:
    """The first cause wins: a failure or a cancel starts the compensation phase once."""
    return (
        "UPDATE saga_state SET phase = ?, reason = ?, failed_step = ?, updated_at = ?"
        " WHERE saga_id = ? AND phase = ? AND pivot_passed = 0",
        (
            COMPENSATING,
            reason.value if reason else None,
            failed_step,
            time.time(),
            saga_id,
            FORWARD,
        ),
    )


def expect_compensation(saga: SagaSpec, saga_id: str, step: str) -> Op | None:
    """Show the compensation the chain waits on as running (what a stuck saga is stuck in)."""
    compensation = saga.compensation_of(step)
    if compensation is None:
        return None
    return (
        "INSERT INTO saga_steps (saga_id, step, phase, status, attempts, seq)"
        " SELECT CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), 'running', 0,"
        " coalesce(max(seq), 0) + 1 FROM saga_steps WHERE saga_id = ? HAVING count(*) > 0"
        " ON CONFLICT DO NOTHING",
        (saga_id, compensation, Phase.COMPENSATE.value, saga_id),
    )


def _compensated(
    saga: SagaSpec, saga_id: str, step: str, event: Event, dialect: Dialect
) -> list[Op]:
    """A compensation of ``step`` reported (done, no-op or failed)."""
    status = event.status or StepStatus.FAILED
    settled = _SETTLED_BY.get(status, StepStatus.FAILED)
    return [
        *optional(expect_compensation(saga, saga_id, step)),
        (
            "UPDATE saga_steps SET status = ?, attempts = ? WHERE saga_id = ? AND step = ?"
            " AND status = 'running'",
            (status.value, event.attempts, saga_id, saga.compensation_of(step)),
        ),
        _settle_forward(saga_id, step, settled, 0, dialect),
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
                json.dumps(list(outcome.failed_compensations)),
                time.time(),
            ),
        )
