"""Idempotency and tombstones shared by every service, keyed by saga id + step name."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from shared.contracts import Reason, StepName, StepRequest, StepResult, StepStatus
from shared.errors import BusinessFailure, StepRejected
from shared.saga import forward_of
from shared.store import SqliteStore, Tx

Within = Callable[[Tx, StepResult], Awaitable[None]]
"""Extra writes in the step's own transaction (the choreography's outbox and inbox rows)."""

Apply = Callable[[Tx], Awaitable[dict[str, Any]]]
Undo = Callable[[Tx, dict[str, Any]], Awaitable[dict[str, Any]]]

STEP_LOG = """
CREATE TABLE step_log (
    saga_id TEXT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}',
    at REAL NOT NULL,
    PRIMARY KEY (saga_id, step)
)
"""


class StepHandler(Protocol):
    """A forward step or compensation as both variants call it."""

    async def __call__(self, req: StepRequest, within: Within | None = None) -> StepResult: ...


def _result(row: Any, saga_id: str, step: StepName) -> StepResult:
    return StepResult(
        saga_id=saga_id,
        step=step,
        status=StepStatus(row["status"]),
        detail=json.loads(row["detail"]),
        reason=Reason(row["reason"]) if row["reason"] else None,
        message=row["message"],
        replayed=True,
    )


async def _logged(tx: Tx, saga_id: str, step: StepName) -> StepResult | None:
    row = await tx.fetchone(
        "SELECT status, reason, message, detail FROM step_log WHERE saga_id = ? AND step = ?",
        (saga_id, step.value),
    )
    return _result(row, saga_id, step) if row else None


async def _log(tx: Tx, result: StepResult) -> None:
    await tx.execute(
        "INSERT INTO step_log (saga_id, step, status, reason, message, detail, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            result.saga_id,
            result.step.value,
            result.status.value,
            result.reason.value if result.reason else None,
            result.message,
            json.dumps(result.detail, sort_keys=True),
            time.time(),
        ),
    )


def _raise_if_failed(result: StepResult) -> StepResult:
    if result.status is StepStatus.REJECTED:
        raise StepRejected(result.step, result.reason, result.message)
    if result.status is StepStatus.FAILED:
        raise BusinessFailure(result.step, result.reason, result.message)
    return result


class Service:
    """A domain service that owns one store and runs its steps exactly once per saga."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store

    async def _forward(
        self, req: StepRequest, step: StepName, apply: Apply, within: Within | None
    ) -> StepResult:
        """Apply once; a repeat returns (or re-raises) the first result; a tombstone rejects."""
        async with self.store.transaction() as tx:
            result = await _logged(tx, req.saga_id, step)
            if result is None:
                result = await self._attempt(tx, req, step, apply)
                await _log(tx, result)
            elif result.status is StepStatus.NOOP:
                result = result.model_copy(
                    update={"status": StepStatus.REJECTED, "message": f"{step} compensated first"}
                )
            if within is not None:
                await within(tx, result)
        return _raise_if_failed(result)

    async def _attempt(self, tx: Tx, req: StepRequest, step: StepName, apply: Apply) -> StepResult:
        try:
            async with tx.savepoint():
                detail = await apply(tx)
        except BusinessFailure as failure:
            return StepResult(
                saga_id=req.saga_id,
                step=step,
                status=StepStatus.FAILED,
                reason=failure.reason,
                message=failure.message,
            )
        return StepResult(saga_id=req.saga_id, step=step, status=StepStatus.DONE, detail=detail)

    async def _compensate(
        self, req: StepRequest, compensation: StepName, undo: Undo, within: Within | None
    ) -> StepResult:
        """Undo the forward step once; with nothing to undo, record a no-op and a tombstone."""
        forward = forward_of(compensation)
        async with self.store.transaction() as tx:
            result = await _logged(tx, req.saga_id, compensation)
            if result is None:
                result = await self._undo(tx, req, forward, compensation, undo)
                await _log(tx, result)
            if within is not None:
                await within(tx, result)
        return result

    async def _undo(
        self, tx: Tx, req: StepRequest, forward: StepName, compensation: StepName, undo: Undo
    ) -> StepResult:
        done = await _logged(tx, req.saga_id, forward)
        if done is None:
            # The tombstone: the forward step, should it still arrive, finds this row and refuses.
            await _log(
                tx,
                StepResult(
                    saga_id=req.saga_id,
                    step=forward,
                    status=StepStatus.NOOP,
                    message=f"tombstone: {compensation} ran before {forward}",
                ),
            )
        if done is None or done.status is not StepStatus.DONE:
            return StepResult(
                saga_id=req.saga_id,
                step=compensation,
                status=StepStatus.NOOP,
                message=f"nothing to undo: {forward} never took effect",
            )
        detail = await undo(tx, done.detail)
        return StepResult(
            saga_id=req.saga_id, step=compensation, status=StepStatus.DONE, detail=detail
        )
