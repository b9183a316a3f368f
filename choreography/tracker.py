"""The saga tracker, in the orders service: what nobody else in a choreography knows.

It projects every saga event into per-saga state in the orders store (each step's status and
attempts, the phase, the compensations confirmed), decides the end — COMPLETED is recorded by
``complete_order`` itself; COMPENSATED only once every step that acted has its compensation
confirmed; NEEDS_INTERVENTION when a compensation failed, which also queues the saga for a
person — and enforces the business deadline: a saga not past its pivot by then gets
``order.cancel_requested``, the same event as a customer's cancel.

The projection is idempotent (statuses only move forward), so a redelivered batch is harmless
and needs no inbox; the end is re-derived from the state after every batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence

from opentelemetry import propagate, trace
from pydantic import BaseModel, ConfigDict

from choreography import outbox
from choreography.bus import Delivery, Outgoing, Poison
from choreography.events import CANCEL_REQUESTED, PLACED, Event, Routing
from choreography.projection import (
    CLOSED,
    FORWARD,
    SETTLED,
    Op,
    begin_compensation,
    complete,
    expect_compensation,
    fold,
    optional,
    pass_pivot,
    progress,
    record_end,
    run,
)
from shared.contracts import (
    Phase,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepId,
    StepResult,
    StepState,
    StepStatus,
)
from shared.runtime import SagaStuck, UnknownSaga
from shared.saga import SagaSpec
from shared.services.orders import OrdersService
from shared.store import Tx
from shared.telemetry import SAGA_ID, SAGA_OUTCOME, SAGA_VARIANT

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("saga-compare.choreography.tracker")


class Intervention(BaseModel):
    """A saga a person must finish: which compensations failed, and whether it is resolved."""

    model_config = ConfigDict(frozen=True)

    saga_id: str
    order_id: str
    reason: Reason | None
    failed_compensations: list[StepId]
    at: float
    resolved_at: float | None = None
    note: str | None = None


class Tracker:
    """Projection, deadlines, end decisions and queries over the orders store."""

    def __init__(
        self,
        orders: OrdersService,
        *,
        routing: Routing | None = None,
        hand_over: Callable[[list[Outgoing | None]], None] = lambda rows: None,
        poll_s: float = 0.1,
    ) -> None:
        self.orders = orders
        self.routing = routing or Routing()
        self.store = orders.store
        self.hand_over = hand_over
        self.poll_s = poll_s
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ended: dict[str, asyncio.Event] = {}
        self.running = False

    # -- lifecycle (only where the orders service runs) ------------------------------------

    async def start(self) -> None:
        """Arm the deadlines of open sagas and finish any end decided but not recorded."""
        self.running = True
        rows = await self.store.query(
            "SELECT saga_id, phase, deadline_at FROM saga_state WHERE status = ? AND phase <> ?",
            (SagaStatus.RUNNING.value, CLOSED),
        )
        for row in rows:
            if row["phase"] == FORWARD:
                self.watch(row["saga_id"], row["deadline_at"])
            else:
                await self.settle(row["saga_id"])

    async def stop(self) -> None:
        """Disarm the deadlines; a cancel being written finishes (it is short)."""
        self.kill()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def kill(self) -> None:
        self.running = False
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def watch(self, saga_id: str, deadline_at: float) -> None:
        """Arm the saga's business deadline (wall clock, so it survives restarts)."""
        if not self.running:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline_at - time.time())
        previous = self._timers.pop(saga_id, None)
        if previous is not None:
            previous.cancel()
        self._timers[saga_id] = loop.call_later(delay, self._expire, saga_id)

    def _expire(self, saga_id: str) -> None:
        self._timers.pop(saga_id, None)
        task = asyncio.ensure_future(self._deadline(saga_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deadline(self, saga_id: str) -> None:
        try:
            await self.request_cancel(saga_id, Reason.TIMED_OUT)
        except Exception:
            log.exception("deadline of saga %s could not be enforced", saga_id)

    # -- writes at the edges: start, completion, cancel -----------------------------------

    def record_start(self, tx: Tx, event: Event, traceparent: str | None) -> None:
        """The saga's projection row, written in the transaction that places the order."""
        now = time.time()
        tx.execute(
            "INSERT INTO saga_state (saga_id, order_id, status, phase, started_at, deadline_at,"
            " placed, traceparent, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (
                event.saga_id,
                event.order.order_id,
                SagaStatus.RUNNING.value,
                FORWARD,
                event.started_at,
                event.deadline_at,
                event.model_dump_json(),
                traceparent,
                now,
            ),
        )
        rows: list[object] = []
        saga = self.routing.saga
        for seq, step in enumerate(saga.forward_steps):
            status = StepStatus.PENDING if saga.applies(step, event.order) else StepStatus.SKIPPED
            rows += [event.saga_id, step, Phase.FORWARD.value, status.value, seq]
        tx.execute(
            "INSERT INTO saga_steps (saga_id, step, phase, status, attempts, seq) VALUES "
            + ", ".join(["(?, ?, ?, ?, 0, ?)"] * len(saga.forward_steps))
            + " ON CONFLICT DO NOTHING",
            rows,
        )

    def record_step(
        self, tx: Tx, trigger: Event, step: str, result: StepResult, attempt: int
    ) -> None:
        """In the own transaction of a step on this store: the last step's commit completes the
        saga at once (the tracker's consumer would only see it an event later)."""
        if result.status is not StepStatus.DONE or step != self.routing.saga.forward_steps[-1]:
            return
        run(
            tx,
            [
                progress(trigger.saga_id, step, StepStatus.DONE, attempt, ""),
                complete(trigger.saga_id),
            ],
        )

    def ended_if_completed(self, saga_id: str) -> None:
        """After a step's commit on this store: wake the waiters (they re-read the state)."""
        self.ended(saga_id)

    async def request_cancel(self, saga_id: str, reason: Reason) -> bool:
        """Emit ``order.cancel_requested`` unless the saga passed its pivot or is ending."""
        rows = await self.store.query(
            "SELECT traceparent FROM saga_state WHERE saga_id = ?", (saga_id,)
        )
        if not rows:
            raise UnknownSaga(saga_id)
        traceparent = rows[0]["traceparent"]
        context = None
        if not trace.get_current_span().get_span_context().is_valid and traceparent:
            context = propagate.extract({"traceparent": traceparent})
        with _tracer.start_as_current_span(
            f"cancel {reason.value}",
            context=context,
            attributes={SAGA_ID: saga_id, SAGA_VARIANT: "choreography"},
        ):
            row = await self.store.run(
                lambda tx: _cancel(tx, self.routing.saga, saga_id, reason), key=saga_id
            )
        if row is not None:
            self.hand_over([row])
        return row is not None

    # -- the projection (the tracker's consumer handles whole batches) ---------------------

    async def project(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Apply a batch in one transaction, then decide the ends it made possible."""
        poison: list[Delivery] = []
        ops: list[Op] = []
        pivots: list[str] = []
        touched: dict[str, Mapping[str, str]] = {}
        pivot_done = self.routing.done(self.routing.saga.pivot)
        for delivery in deliveries:
            try:
                event = _decode(delivery, self.routing)
            except Poison:
                poison.append(delivery)
                continue
            event_ops, may_end = fold(event, self.routing, self.store.dialect)
            ops += event_ops
            if event.kind == pivot_done:
                pivots.append(event.saga_id)
            if may_end:
                touched[event.saga_id] = delivery.headers
            if event.kind == PLACED:
                self.watch(event.saga_id, event.deadline_at)
        if pivots:
            ops += pass_pivot(pivots)
        # One transaction for the whole batch, one executemany per run of identical statements.
        if ops:
            await self.store.run(lambda tx: run(tx, ops))
        for saga_id, headers in touched.items():
            await self.settle(saga_id, headers)
        return poison

    async def settle(self, saga_id: str, headers: Mapping[str, str] | None = None) -> None:
        """Record the saga's end if its state now allows one (idempotent)."""
        try:
            outcome = await self.describe(saga_id)
        except KeyError:
            return  # not a saga this deployment started
        decision = decide(outcome, self.routing.saga)
        if decision is None:
            return
        status, reason = decision
        context = propagate.extract(dict(headers)) if headers else None
        with _tracer.start_as_current_span(
            "close_saga",
            context=context,
            attributes={SAGA_ID: saga_id, SAGA_VARIANT: "choreography", SAGA_OUTCOME: status.value},
        ):

            def hook(tx: Tx) -> None:
                record_end(tx, outcome, status)

            await self.orders.close(saga_id, status, reason, within=hook)
        self.ended(saga_id)

    # -- queries ---------------------------------------------------------------------------

    async def describe(self, saga_id: str) -> SagaOutcome:
        """The saga's live state in the shape both variants share (one query)."""
        rows = await self.store.query(
            "SELECT s.order_id, s.status, s.reason, s.failed_step,"
            " t.step, t.phase, t.status AS step_status, t.attempts"
            " FROM saga_state s LEFT JOIN saga_steps t ON t.saga_id = s.saga_id"
            " WHERE s.saga_id = ? ORDER BY t.seq",
            (saga_id,),
        )
        if not rows:
            raise UnknownSaga(saga_id)
        state = rows[0]
        states = [
            StepState(
                step=r["step"],
                phase=Phase(r["phase"]),
                status=StepStatus(r["step_status"]),
                attempts=r["attempts"],
            )
            for r in rows
            if r["step"] is not None
        ]
        return SagaOutcome(
            saga_id=saga_id,
            order_id=state["order_id"],
            status=SagaStatus(state["status"]),
            reason=Reason(state["reason"]) if state["reason"] else None,
            failed_step=state["failed_step"],
            failed_compensations=[
                s.step
                for s in states
                if s.phase is Phase.COMPENSATE and s.status is StepStatus.FAILED
            ],
            steps=states,
        )

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The terminal outcome; woken by this process's decisions, polling for the others'."""
        deadline = time.monotonic() + timeout_s
        ended = self._ended.setdefault(saga_id, asyncio.Event())
        try:
            while True:
                outcome = await self.describe(saga_id)
                if outcome.status.terminal:
                    return outcome
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SagaStuck(saga_id, in_flight(outcome), timeout_s)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, self.poll_s)):
                        await ended.wait()
        finally:
            self._ended.pop(saga_id, None)

    def ended(self, saga_id: str) -> None:
        """The saga ended: drop its deadline, wake whoever waits for it in this process."""
        timer = self._timers.pop(saga_id, None)
        if timer is not None:
            timer.cancel()
        event = self._ended.get(saga_id)
        if event is not None:
            event.set()

    async def interventions(self, *, include_resolved: bool = False) -> list[Intervention]:
        """The intervention queue: sagas left NEEDS_INTERVENTION, oldest first."""
        where = "" if include_resolved else " WHERE resolved_at IS NULL"
        rows = await self.store.query(
            "SELECT saga_id, order_id, reason, failed_compensations, at, resolved_at, note"
            f" FROM interventions{where} ORDER BY at"
        )
        return [
            Intervention(
                saga_id=r["saga_id"],
                order_id=r["order_id"],
                reason=Reason(r["reason"]) if r["reason"] else None,
                failed_compensations=json.loads(r["failed_compensations"]),
                at=r["at"],
                resolved_at=r["resolved_at"],
                note=r["note"],
            )
            for r in rows
        ]

    async def resolve(self, saga_id: str, note: str) -> bool:
        """A person finished the saga by hand: take it off the queue."""
        updated = await self.store.run(
            lambda tx: tx.execute(
                "UPDATE interventions SET resolved_at = ?, note = ?"
                " WHERE saga_id = ? AND resolved_at IS NULL",
                (time.time(), note, saga_id),
            ),
            key=saga_id,
        )
        return bool(updated)


def _cancel(tx: Tx, saga: SagaSpec, saga_id: str, reason: Reason) -> Outgoing | None:
    """``order.cancel_requested`` into the outbox, unless the saga is past its pivot or ending."""
    row = tx.fetchone(
        "SELECT status, phase, pivot_passed, placed FROM saga_state WHERE saga_id = ?",
        (saga_id,),
    )
    if row is None or row["status"] != SagaStatus.RUNNING.value:
        return None
    if row["phase"] != FORWARD or row["pivot_passed"]:
        return None
    steps = tx.fetchall(
        "SELECT step FROM saga_steps WHERE saga_id = ? AND phase = ? AND status IN (?, ?, ?)"
        " ORDER BY seq",
        (saga_id, Phase.FORWARD.value, "running", "done", "failed"),
    )
    trail = tuple(r["step"] for r in steps)
    placed = Event.model_validate_json(row["placed"])
    cancel = placed.follow(CANCEL_REQUESTED, trail=trail, reason=reason)
    expected = expect_compensation(saga, saga_id, trail[-1]) if trail else None
    for sql, params in [begin_compensation(saga_id, reason, None), *optional(expected)]:
        tx.execute(sql, params)
    return outbox.add(tx, cancel)


def decide(outcome: SagaOutcome, saga: SagaSpec) -> tuple[SagaStatus, Reason | None] | None:
    """The end a running saga has reached, or None while something is unconfirmed."""
    if outcome.status.terminal:
        return None
    forward = {s.step: s for s in outcome.steps if s.phase is Phase.FORWARD}
    onward = [step for step in saga.forward_steps if saga.after_pivot(step)]
    if any(forward[step].status is StepStatus.FAILED for step in onward):
        return SagaStatus.NEEDS_INTERVENTION, None  # past the pivot: only a person can finish
    compensations = {s.step: s.status.value for s in outcome.steps if s.phase is Phase.COMPENSATE}
    if compensations.get(saga.compensations[0]) not in SETTLED:
        return None  # the chain always ends at the first step
    for step, state in forward.items():
        compensation = saga.compensation_of(step)
        if state.status is not StepStatus.DONE or compensation is None:
            continue
        if compensations.get(compensation) not in SETTLED:
            return None
    if outcome.reason is None and outcome.failed_step is None:
        return None
    failed = bool(outcome.failed_compensations)
    return (SagaStatus.NEEDS_INTERVENTION if failed else SagaStatus.COMPENSATED), outcome.reason


def in_flight(outcome: SagaOutcome) -> StepId | None:
    """The step or compensation a saga waits on (what a stuck saga is stuck in)."""
    running = [s.step for s in outcome.steps if s.status is StepStatus.RUNNING]
    return running[-1] if running else None


def _decode(delivery: Delivery, routing: Routing) -> Event:
    parsed = routing.parse_subject(delivery.subject)
    if parsed is None:
        raise Poison(f"not a saga subject: {delivery.subject}")
    try:
        return Event.model_validate_json(delivery.data)
    except ValueError:
        raise Poison(f"undecodable event on {delivery.subject}") from None
