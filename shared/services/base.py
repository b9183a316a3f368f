"""Idempotency and tombstones shared by every service, keyed by saga id + step name.

A step is one transaction: ``forward`` and ``compensate`` below are plain functions over the
transaction, and `Service` runs each as one ``store.run`` keyed by the saga.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection
from enum import StrEnum
from typing import Any, Protocol

from shared.contracts import StepRequest, StepResult, StepStatus, as_reason
from shared.countermeasures import DEFAULT, Countermeasures
from shared.errors import BusinessFailure, StepRejected
from shared.store import Migration, Row, Store, Tx, migrations

Within = Callable[[Tx, StepResult], None]
"""Extra writes in the step's own transaction (the choreography's outbox and inbox rows)."""

FenceHook = Callable[[Tx, "Fence"], None]
"""Extra writes in a fence's own transaction (the choreography's inbox row)."""

Apply = Callable[[Tx], dict[str, Any]]
Undo = Callable[[Tx, dict[str, Any]], dict[str, Any]]
Mark = Callable[[Tx, str, str, str], None]
"""What a fence or a compensation that found nothing to undo leaves for the forward step:
``(tx, saga_id, forward step, why)`` (the version file, or nothing)."""

STEP_LOG: tuple[Migration, ...] = migrations(
    "step_log",
    """
    CREATE TABLE step_log (
        saga_id TEXT NOT NULL,
        step TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        message TEXT NOT NULL DEFAULT '',
        detail TEXT NOT NULL DEFAULT '{}',
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (saga_id, step)
    )
    """,
)
"""Every service's record of each step it ran, per saga: its idempotency key and tombstones."""


class Fence(StrEnum):
    """What a cancel found when it reached a forward step (see `fence`)."""

    FENCED = "fenced"
    """The step had not committed: it is tombstoned and will be refused if it still comes."""
    ACTED = "acted"
    """The step committed (or was skipped) first: nothing is undone by the fence."""
    FAILED = "failed"
    """The step failed: the saga is compensating for that already."""


class StepHandler(Protocol):
    """A forward step or compensation as both variants call it."""

    async def __call__(self, req: StepRequest, within: Within | None = None) -> StepResult: ...


def _result(row: Row, saga_id: str, step: str) -> StepResult:
    return StepResult(
        saga_id=saga_id,
        step=step,
        status=StepStatus(row["status"]),
        detail=json.loads(row["detail"]),
        reason=as_reason(row["reason"]) if row["reason"] else None,
        message=row["message"],
        replayed=True,
    )


def logged(tx: Tx, saga_id: str, step: str) -> StepResult | None:
    """The recorded result of a step of this saga, if it ran (or was tombstoned)."""
    row = tx.fetchone(
        "SELECT status, reason, message, detail FROM step_log WHERE saga_id = ? AND step = ?",
        (saga_id, step),
    )
    return _result(row, saga_id, step) if row else None


def _log(tx: Tx, result: StepResult) -> None:
    tx.execute(
        "INSERT INTO step_log (saga_id, step, status, reason, message, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            result.saga_id,
            result.step,
            result.status.value,
            str(result.reason) if result.reason else None,
            result.message,
            json.dumps(result.detail, sort_keys=True),
            time.time(),
        ),
    )


def _raise_if_failed(result: StepResult) -> StepResult:
    if result.status is StepStatus.REJECTED:
        raise StepRejected(result.step, result.reason, result.message)
    if result.status is StepStatus.FAILED:
        raise BusinessFailure(result.step, result.reason, result.message, result.detail)
    return result


_TOMBSTONE = "tombstone: "
"""How a tombstone's row begins its message (the rest says what left it)."""


def tombstone(tx: Tx, saga_id: str, step: str, why: str) -> None:
    """The version file (countermeasure): the forward step's row says it must not run, so it
    is refused should it still arrive (a redelivery, an attempt that outlived its timeout)."""
    _log(tx, StepResult(saga_id=saga_id, step=step, status=StepStatus.NOOP, message=why))


def no_tombstone(tx: Tx, saga_id: str, step: str, why: str) -> None:
    """Naive: nothing is left behind; a forward step that arrives late commits as if new."""


def forward(tx: Tx, req: StepRequest, step: str, apply: Apply, within: Within | None) -> StepResult:
    """Apply once; a repeat returns the first result; a tombstone turns it into a rejection.

    An operator's retry (round n) of a step whose failure is recorded runs it again: a failed
    step changed nothing (its writes were undone), so only a success is kept for good.
    """
    result = logged(tx, req.saga_id, step)
    if result is not None and req.round and result.status is StepStatus.FAILED:
        tx.execute("DELETE FROM step_log WHERE saga_id = ? AND step = ?", (req.saga_id, step))
        result = None
    if result is None:
        result = _attempt(tx, req, step, apply)
        _log(tx, result)
    elif result.status is StepStatus.NOOP:
        result = _refused(result, step)
    if within is not None:
        within(tx, result)
    return result


def _refused(row: StepResult, step: str) -> StepResult:
    """A step that met its tombstone, refused with what left it: a cancel's fence or its undo."""
    why = (row.message or "").removeprefix(_TOMBSTONE) or f"{step} was shut before it ran"
    return row.model_copy(update={"status": StepStatus.REJECTED, "message": why})


def _attempt(tx: Tx, req: StepRequest, step: str, apply: Apply) -> StepResult:
    """Run the step's writes; a business failure undoes them (savepoint) and is the result."""
    try:
        with tx.savepoint():
            detail = apply(tx)
    except BusinessFailure as failure:
        return StepResult(
            saga_id=req.saga_id,
            step=step,
            status=StepStatus.FAILED,
            reason=failure.reason,
            message=failure.message,
            detail=failure.detail,
        )
    return StepResult(saga_id=req.saga_id, step=step, status=StepStatus.DONE, detail=detail)


def compensate(
    tx: Tx,
    req: StepRequest,
    compensation: str,
    forward: str,
    undo: Undo,
    within: Within | None,
    mark: Mark = tombstone,
) -> StepResult:
    """Undo the forward step once; with nothing to undo, record a no-op and ``mark`` it."""
    result = logged(tx, req.saga_id, compensation)
    if result is None:
        result = _undo(tx, req, forward, compensation, undo, mark)
        _log(tx, result)
    if within is not None:
        within(tx, result)
    return result


def _undo(
    tx: Tx, req: StepRequest, forward: str, compensation: str, undo: Undo, mark: Mark
) -> StepResult:
    done = logged(tx, req.saga_id, forward)
    if done is None:
        # The tombstone: the forward step, should it still arrive, finds this row and refuses.
        mark(tx, req.saga_id, forward, f"{_TOMBSTONE}{compensation} ran before {forward}")
    if done is None or done.status is not StepStatus.DONE:
        return StepResult(
            saga_id=req.saga_id,
            step=compensation,
            status=StepStatus.NOOP,
            message=f"nothing to undo: {forward} never took effect",
        )
    detail = undo(tx, done.detail)
    return StepResult(saga_id=req.saga_id, step=compensation, status=StepStatus.DONE, detail=detail)


def fence(
    tx: Tx, saga_id: str, step: str, within: FenceHook | None = None, mark: Mark = tombstone
) -> Fence:
    """A cancel reaches a forward step: tombstone it unless it committed, in one transaction.

    The step's own transaction reads the same step log row, so a step and its fence racing
    serialize: either the step committed first (ACTED) or the tombstone did (FENCED). Without
    the version file (``mark`` leaves nothing) the step answers FENCED and may still commit.
    """
    done = logged(tx, saga_id, step)
    if done is None:
        mark(tx, saga_id, step, f"{_TOMBSTONE}the saga was cancelled before {step} committed")
        answer = Fence.FENCED
    elif done.status in (StepStatus.NOOP, StepStatus.REJECTED):
        answer = Fence.FENCED
    elif done.status is StepStatus.FAILED:
        answer = Fence.FAILED
    else:
        answer = Fence.ACTED
    if within is not None:
        within(tx, answer)
    return answer


def skip(tx: Tx, req: StepRequest, step: str, within: Within | None) -> StepResult:
    """A step that does not apply is recorded skipped once, unless a tombstone refuses it."""
    result = logged(tx, req.saga_id, step)
    if result is None:
        result = StepResult(saga_id=req.saga_id, step=step, status=StepStatus.SKIPPED)
        _log(tx, result)
    elif result.status is StepStatus.NOOP:
        result = _refused(result, step)
    if within is not None:
        within(tx, result)
    return result


def clear(tx: Tx, *tables: str) -> None:
    """Empty the given tables (seeding and resets), children first."""
    for table in tables:
        tx.execute(f"DELETE FROM {table}")


async def rows_by_key(
    store: Store, select: str, key: str, ids: Collection[str] | None = None
) -> list[Row]:
    """``select`` (no WHERE of its own): every row in ``key`` order, or only the rows whose
    ``key`` is one of ``ids`` (a few rows, whatever the size of the table)."""
    if ids is None:
        return await store.query(f"{select} ORDER BY {key}")
    wanted = sorted(set(ids))
    if not wanted:
        return []
    marks = ", ".join("?" * len(wanted))
    return await store.query(f"{select} WHERE {key} IN ({marks})", wanted)


class Service:
    """A domain service that owns one store and runs its steps exactly once per saga, applying
    the isolation countermeasures it is given (`shared/countermeasures.py`)."""

    def __init__(self, store: Store, countermeasures: Countermeasures = DEFAULT) -> None:
        self.store = store
        self.countermeasures = countermeasures
        self.mark: Mark = tombstone if countermeasures.version_file else no_tombstone

    @property
    def reads_from(self) -> tuple[str, ...]:
        """Other services whose read path this one's countermeasures use (their stores must
        be open where this service runs)."""
        return ()

    async def _forward(
        self, req: StepRequest, step: str, apply: Apply, within: Within | None
    ) -> StepResult:
        """The forward step as one transaction; a recorded failure or rejection is raised."""
        result = await self.store.run(
            lambda tx: forward(tx, req, step, apply, within), key=req.saga_id
        )
        return _raise_if_failed(result)

    async def fence(self, saga_id: str, step: str, within: FenceHook | None = None) -> Fence:
        """A cancel reaching one of this service's forward steps (see `fence`)."""
        return await self.store.run(
            lambda tx: fence(tx, saga_id, step, within, self.mark), key=saga_id
        )

    async def skip(self, req: StepRequest, step: str, within: Within | None = None) -> StepResult:
        """A forward step that does not apply to the order: recorded, or refused if fenced."""
        result = await self.store.run(lambda tx: skip(tx, req, step, within), key=req.saga_id)
        return _raise_if_failed(result)

    async def tombstoned(self, saga_id: str, step: str) -> bool:
        """Whether a cancel or a compensation shut this forward step before it ran (read path)."""
        return await self.step_status(saga_id, step) is StepStatus.NOOP

    async def step_status(self, saga_id: str, step: str) -> StepStatus | None:
        """What this service's step log says of a step of the saga (read path)."""
        rows = await self.store.query(
            "SELECT status FROM step_log WHERE saga_id = ? AND step = ?", (saga_id, step)
        )
        return StepStatus(rows[0]["status"]) if rows else None

    async def _compensate(
        self,
        req: StepRequest,
        compensation: str,
        undo: Undo,
        within: Within | None,
        *,
        undoes: str,
    ) -> StepResult:
        """The compensation of step ``undoes`` as one transaction (a no-op with a tombstone if
        there is nothing to undo)."""
        return await self.store.run(
            lambda tx: compensate(tx, req, compensation, undoes, undo, within, self.mark),
            key=req.saga_id,
        )
