"""The saga tracker, in the orders service: what nobody else in a choreography knows.

It folds every saga event into the saga's view (`projection.py`, a pure fold) in the orders
store, one row per saga, and decides the end — COMPLETED once the last step is done;
COMPENSATED only once every step that acted has its compensation confirmed and no step is
still in flight; NEEDS_INTERVENTION when a compensation failed or a step after the pivot
failed, which keeps the saga open for an operator (it is settled: its effects stay as they
are until someone acts) — and it enforces the business deadline: a saga not past its pivot by
then gets ``order.cancel_requested``, the same event as a customer's cancel.

Folding is idempotent and order-independent, so a redelivered or reordered batch is harmless
and the tracker needs no inbox; the end is re-derived from the view after every batch.

A tracker holds one saga definition; as its event versioning setting says it reads events and
stored views of others (`choreography/versions.py`, `choreography/views.py`): each event is
folded, and each saga decided, by the rules of the definition the saga runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from opentelemetry import propagate, trace
from pydantic import BaseModel, ConfigDict

from choreography import inbox, outbox
from choreography.bus import Delivery, Outgoing, Poison, Retry
from choreography.events import CANCEL_REQUESTED, PLACED, Event, Routing
from choreography.projection import (
    FORWARD,
    Ended,
    SagaView,
    cause,
    decide,
    fold,
    new_view,
    outcome,
    phase_of,
    started_steps,
    status_of,
)
from choreography.versions import NotOurs, Reader
from choreography.views import UnreadableView, Views
from shared.contracts import (
    Action,
    ActionResult,
    OperatorAction,
    Reason,
    ReasonId,
    SagaOutcome,
    SagaStatus,
    StepId,
    StepStatus,
)
from shared.runtime import NotAwaitingOperator, SagaStuck, UnknownSaga
from shared.saga import SagaSpec
from shared.services.orders import OrdersService
from shared.store import Row, Tx
from shared.telemetry import SAGA_ID, SAGA_OUTCOME, SAGA_VARIANT

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("saga-compare.choreography.tracker")

T = TypeVar("T")

CHUNK = 500
"""Saga ids per ``IN (...)`` list when a batch loads its views."""
OPERATOR_INBOX = "operator"
"""The inbox's consumer name for operator commands (choreography/operator.py)."""

Refusal = NotAwaitingOperator | UnknownSaga
"""Why an operator action was refused."""


class DuplicateCommand(Exception):
    """An operator command the tracker already acted on (or refused): nothing is done again."""

    def __init__(self, command: str) -> None:
        super().__init__(f"operator command {command} was handled already")
        self.command = command


EndHook = Callable[[Tx, str, SagaStatus, ReasonId | None], Outgoing | None]
"""Writes, in the transaction recording a saga's end, a message saying so (the front door's)."""


class Intervention(BaseModel):
    """A saga a person must finish: which compensations failed, and whether it is resolved."""

    model_config = ConfigDict(frozen=True)

    saga_id: str
    order_id: str
    reason: ReasonId | None
    failed_step: StepId | None
    failed_compensations: list[StepId]
    at: float
    resolved: bool = False


class Tracker:
    """Projection, deadlines, end decisions and queries over the orders store."""

    def __init__(
        self,
        orders: OrdersService,
        *,
        routing: Routing,
        hand_over: Callable[[list[Outgoing | None]], None] = lambda rows: None,
        on_end: EndHook | None = None,
        poll_s: float = 0.1,
        reader: Reader | None = None,
    ) -> None:
        self.orders = orders
        self.store = orders.store
        self.routing = routing
        self.views = Views(reader or Reader(routing.definition))
        """How this tracker reads events and stored views of other releases."""
        self.hand_over = hand_over
        self.on_end = on_end
        self.poll_s = poll_s
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self.running = False

    @property
    def saga(self) -> SagaSpec:
        return self.routing.saga

    # -- lifecycle (only where the orders service runs) ------------------------------------

    async def start(self) -> None:
        """Arm the deadlines of open sagas and finish any end decided but not recorded."""
        self.running = True
        rows = await self.store.query(
            "SELECT saga_id, deadline_at, view, placed FROM sagas WHERE status = ?",
            (SagaStatus.RUNNING.value,),
        )
        for row in rows:
            try:
                view = self.views.load(row["view"], row["placed"])
            except UnreadableView as unreadable:
                log.error("%s", unreadable)
                continue
            if cause(view) is None:
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

    # -- writes at the edges: start, cancel -------------------------------------------------

    def record_start(self, tx: Tx, event: Event, traceparent: str | None) -> None:
        """The saga's view, written in the transaction that places the order."""
        routing = self.views.routing_for(event)
        view = fold(new_view(event, routing.saga, self.views.shape), event, routing)
        tx.execute(
            "INSERT INTO sagas (saga_id, order_id, status, phase, started_at, deadline_at,"
            " placed, traceparent, view, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (
                event.saga_id,
                event.order.order_id,
                status_of(view).value,
                FORWARD,
                event.started_at,
                event.deadline_at,
                event.model_dump_json(),
                traceparent,
                self.views.dump(view),
                time.time(),
            ),
        )
        save(tx, [view], self.views)

    async def request_cancel(self, saga_id: str, reason: Reason) -> bool:
        """Emit ``order.cancel_requested`` unless the saga passed its pivot or is ending."""
        rows = await self.store.query("SELECT traceparent FROM sagas WHERE saga_id = ?", (saga_id,))
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
            row = await self.store.run(lambda tx: self._cancel(tx, saga_id, reason), key=saga_id)
        if row is not None:
            self.hand_over([row])
        return row is not None

    def _cancel(self, tx: Tx, saga_id: str, reason: Reason) -> Outgoing | None:
        """``order.cancel_requested`` into the outbox, unless past the pivot or already ending.

        A deadline's cancel happened at the deadline, whenever the tracker gets to it.
        """
        row = tx.fetchone("SELECT placed, view FROM sagas WHERE saga_id = ?", (saga_id,))
        if row is None:
            return None
        view = self.views.load(row["view"], row["placed"])
        if status_of(view).terminal or view.pivot_passed or cause(view) is not None:
            return None
        placed = Event.model_validate_json(row["placed"]).in_envelope(self.views.shape)
        at = placed.deadline_at if reason is Reason.TIMED_OUT else time.time()
        routing = self.views.routing_of(view)
        trail = started_steps(view, routing.saga)
        cancel = placed.follow(CANCEL_REQUESTED, trail=trail, reason=reason, at=at)
        save(tx, [fold(view, cancel, routing)], self.views)
        return outbox.add(tx, cancel)

    # -- the projection (the tracker's consumer handles whole batches) ---------------------

    async def project(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Fold a batch in one transaction, then decide the ends it made possible."""
        poison: list[Delivery] = []
        events: list[Event] = []
        touched: dict[str, Mapping[str, str]] = {}
        handed_back: Retry | None = None
        for delivery in deliveries:
            try:
                event = self.views.reader.decode(delivery)
            except Poison:
                poison.append(delivery)
                continue
            except NotOurs:
                continue  # another release's copy: its own tracker folds it
            except Retry as retry:
                handed_back = retry  # a saga this tracker does not understand: see below
                continue
            events.append(event)
            touched[event.saga_id] = delivery.headers
            if event.kind == PLACED:
                self.watch(event.saga_id, event.deadline_at)
        views = await self.store.run(lambda tx: self._fold_batch(tx, events)) if events else {}
        for saga_id, view in views.items():
            await self.settle_view(view, touched[saga_id])
            self._wake(saga_id)
        if handed_back is not None:
            # The whole batch is offered again (another instance of this consumer may hold
            # that definition); what was folded here folds again to the same views.
            raise handed_back
        return poison

    def _fold_batch(self, tx: Tx, events: list[Event]) -> dict[str, SagaView]:
        views = load(tx, list(dict.fromkeys(event.saga_id for event in events)), self.views)
        for event in events:
            view = views.get(event.saga_id)
            if view is not None:  # not a saga this deployment started
                views[event.saga_id] = fold(view, event, self.views.routing_for(event))
        save(tx, list(views.values()), self.views)
        return views

    async def settle(self, saga_id: str) -> None:
        """Record the saga's end if its view now allows one (idempotent)."""
        with contextlib.suppress(UnknownSaga):
            await self.settle_view(await self.view(saga_id))

    async def settle_view(self, view: SagaView, headers: Mapping[str, str] | None = None) -> None:
        """Record the end a freshly folded view allows, or wake waiters of a completed saga."""
        saga_id = view.saga_id
        if view.completed:
            return self.ended(saga_id)
        decision = decide(view, self.views.spec_of(view))
        if decision is None:
            return
        status, reason = decision
        context = propagate.extract(dict(headers)) if headers else None
        with _tracer.start_as_current_span(
            "close_saga",
            context=context,
            attributes={SAGA_ID: saga_id, SAGA_VARIANT: "choreography", SAGA_OUTCOME: status.value},
        ):
            rows: list[Outgoing | None] = []

            def hook(tx: Tx) -> None:
                ended = Ended(status=status, reason=reason, at=time.time())
                record_end(tx, saga_id, ended, self.views)
                if self.on_end is not None:
                    rows.append(self.on_end(tx, saga_id, status, reason))

            await self.orders.close(saga_id, status, reason, within=hook)
        self.hand_over(rows)
        self.ended(saga_id)

    # -- queries ---------------------------------------------------------------------------

    async def view(self, saga_id: str) -> SagaView:
        rows = await self.store.query(
            "SELECT view, placed FROM sagas WHERE saga_id = ?", (saga_id,)
        )
        if not rows:
            raise UnknownSaga(saga_id)
        return self.views.load(rows[0]["view"], rows[0]["placed"])

    def outcome(self, view: SagaView) -> SagaOutcome:
        """The saga's live state, by the steps of the definition it runs (as far as known)."""
        return outcome(view, self.views.spec_of(view))

    async def describe(self, saga_id: str) -> SagaOutcome:
        """The saga's live state in the shape both variants share (one read)."""
        return self.outcome(await self.view(saga_id))

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The settled outcome (waiting for an operator counts as settled)."""

        def settled(view: SagaView) -> SagaOutcome | None:
            current = self.outcome(view)
            return current if current.status.terminal else None

        try:
            return await self._until(saga_id, settled, timeout_s)
        except TimeoutError:
            current = await self.describe(saga_id)
            raise SagaStuck(saga_id, in_flight(current), timeout_s) from None

    async def _until(
        self, saga_id: str, ready: Callable[[SagaView], T | None], timeout_s: float
    ) -> T:
        """Re-read the view until ``ready`` finds something: woken by this process's folds and
        decisions, polling for another process's; TimeoutError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        woken = asyncio.Event()
        self._waiters.setdefault(saga_id, set()).add(woken)
        try:
            while True:
                found = ready(await self.view(saga_id))
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"saga {saga_id}: nothing after {timeout_s}s")
                woken.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(remaining, self.poll_s)):
                        await woken.wait()
        finally:
            waiters = self._waiters.get(saga_id, set())
            waiters.discard(woken)
            if not waiters:
                self._waiters.pop(saga_id, None)

    def ended(self, saga_id: str) -> None:
        """The saga settled: drop its deadline, wake whoever waits for it in this process."""
        timer = self._timers.pop(saga_id, None)
        if timer is not None:
            timer.cancel()
        self._wake(saga_id)

    def _wake(self, saga_id: str) -> None:
        for event in self._waiters.get(saga_id, ()):
            event.set()

    async def interventions(self, *, include_resolved: bool = False) -> list[Intervention]:
        """The intervention queue: sagas waiting for an operator, oldest first."""
        rows = await self.store.query(
            "SELECT view, placed FROM sagas WHERE status = ?",
            (SagaStatus.NEEDS_INTERVENTION.value,),
        )
        queue = []
        for row in rows:
            view = self.views.load(row["view"], row["placed"])
            current = self.outcome(view)
            if current.resolved and not include_resolved:
                continue
            queue.append(
                Intervention(
                    saga_id=view.saga_id,
                    order_id=view.order_id,
                    reason=current.reason,
                    failed_step=current.failed_step,
                    failed_compensations=current.failed_compensations,
                    at=view.end.at if view.end else 0.0,
                    resolved=current.resolved,
                )
            )
        return sorted(queue, key=lambda item: item.at)

    async def retry_compensation(
        self, saga_id: str, who: str, *, command: str | None = None
    ) -> OperatorAction:
        """An operator retries the failed compensations: one command per service (round n).

        Returns the action as recorded (pending, or nothing to retry); its result follows
        from the round's answers (`wait_action`). ``command`` is the id of the operator
        command asking for it (`choreography.operator`): recorded in the inbox in the same
        transaction, so a redelivered command raises DuplicateCommand and starts no round.
        """
        now = time.time()

        def work(tx: Tx) -> tuple[OperatorAction | Refusal, list[Outgoing | None]]:
            waiting = self._waiting_once(tx, saga_id, command)
            if not isinstance(waiting, tuple):
                return waiting, []
            view, current = waiting
            failed = tuple(current.failed_compensations)
            if not failed:
                action = OperatorAction(
                    action=Action.RETRY_COMPENSATION,
                    who=who,
                    at=now,
                    result=ActionResult.NOTHING_TO_RETRY,
                )
                recorded = view.model_copy(update={"actions": (*view.actions, action)})
                save(tx, [recorded], self.views)
                return action, []
            round = max(view.rounds, default=0) + 1
            action = OperatorAction(action=Action.RETRY_COMPENSATION, who=who, at=now, round=round)
            rounds = {**view.rounds, round: failed}
            update: dict[str, object] = {"actions": (*view.actions, action), "rounds": rounds}
            save(tx, [view.model_copy(update=update)], self.views)
            placed = Event.model_validate_json(_placed(tx, saga_id)).in_envelope(self.views.shape)
            routing = self.views.routing_of(view)
            commands = [
                placed.follow(
                    routing.retry_compensation(compensation),
                    round=round,
                    step=compensation,
                    reason=current.reason,
                    trail=started_steps(view, routing.saga),
                )
                for compensation in failed
            ]
            return action, [outbox.add(tx, command) for command in commands]

        action, rows = await self.store.run(work, key=saga_id)
        self.hand_over(rows)
        if isinstance(action, Exception):
            raise action
        return action

    async def wait_action(self, saga_id: str, index: int, timeout_s: float) -> OperatorAction:
        """The ``index``-th recorded action once its result is known (a retry's round ended)."""

        def known(view: SagaView) -> OperatorAction | None:
            action = self.outcome(view).actions[index]
            return None if action.result is ActionResult.PENDING else action

        return await self._until(saga_id, known, timeout_s)

    def _waiting(self, tx: Tx, saga_id: str) -> tuple[SagaView, SagaOutcome]:
        """The view of a saga that waits for an operator, or NotAwaitingOperator."""
        view = load(tx, [saga_id], self.views).get(saga_id)
        if view is None:
            raise UnknownSaga(saga_id)
        current = self.outcome(view)
        check_waiting(current)
        return view, current

    def _waiting_once(
        self, tx: Tx, saga_id: str, command: str | None
    ) -> tuple[SagaView, SagaOutcome] | Refusal:
        """`_waiting`, for an operator command at most once: its id joins the inbox first
        (DuplicateCommand if it is there), and a refusal is returned, not raised, so that the
        inbox row commits with it (a redelivery is a duplicate, never acted on later)."""
        if command is None:
            return self._waiting(tx, saga_id)
        if not inbox.record(tx, OPERATOR_INBOX, command, saga_id):
            raise DuplicateCommand(command)
        try:
            return self._waiting(tx, saga_id)
        except (NotAwaitingOperator, UnknownSaga) as refused:
            return refused

    async def resolve(
        self, saga_id: str, who: str, note: str, *, command: str | None = None
    ) -> OperatorAction:
        """An operator finished the saga by hand: recorded, and it no longer waits.

        ``command``: as for `retry_compensation` (a redelivery raises DuplicateCommand).
        """
        action = OperatorAction(
            action=Action.RESOLVE, who=who, at=time.time(), note=note, result=ActionResult.RESOLVED
        )

        def work(tx: Tx) -> Refusal | None:
            waiting = self._waiting_once(tx, saga_id, command)
            if not isinstance(waiting, tuple):
                return waiting
            view, _ = waiting
            save(tx, [view.model_copy(update={"actions": (*view.actions, action)})], self.views)
            return None

        refused = await self.store.run(work, key=saga_id)
        if refused is not None:
            raise refused
        self.ended(saga_id)
        return action


def check_waiting(current: SagaOutcome) -> None:
    """NotAwaitingOperator unless the saga waits for an operator (NEEDS_INTERVENTION, not
    resolved, no retry under way): what the tracker checks, and a front door before asking."""
    pending = any(a.result is ActionResult.PENDING for a in current.actions)
    if current.status is not SagaStatus.NEEDS_INTERVENTION or current.resolved or pending:
        state = "resolved" if current.resolved else current.status.value
        raise NotAwaitingOperator(current.saga_id, "being retried" if pending else state)


def load(tx: Tx, saga_ids: list[str], views: Views) -> dict[str, SagaView]:
    """The views of these sagas, read inside the caller's transaction (as ``views`` reads)."""
    rows: list[Row] = []
    for start in range(0, len(saga_ids), CHUNK):
        chunk = saga_ids[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        rows += tx.fetchall(f"SELECT view, placed FROM sagas WHERE saga_id IN ({marks})", chunk)
    found = (views.load(row["view"], row["placed"]) for row in rows)
    return {view.saga_id: view for view in found}


SAVE = (
    "UPDATE sagas SET view = ?, status = ?, phase = ?, reason = ?, failed_step = ?,"
    " running_step = ?, failed_compensation = ?, waiting = ?, updated_at = ?,"
    " settled_at = CASE WHEN ? = 1 THEN (CASE WHEN status = ? AND settled_at IS NOT NULL"
    " THEN settled_at ELSE ? END) ELSE NULL END,"
    " ended_at = CASE WHEN ? = 1 THEN coalesce(ended_at, ?) ELSE NULL END WHERE saga_id = ?"
)
"""A view and the columns derived from it (what read models list and filter by). On the right
of ``SET``, ``status`` is the row's status before this write: ``settled_at`` keeps the moment
the saga reached its present status."""


def save(tx: Tx, views: list[SagaView], codec: Views) -> None:
    """Write views back with the columns derived from them. ``settled_at`` is when the saga
    reached its present settled status (COMPLETED, COMPENSATED, or NEEDS_INTERVENTION while
    it waits for an operator): what the counters count per minute. ``ended_at`` is when it
    stopped being open: it settled, or stopped waiting for an operator (resolved or
    compensated by a retry) — as a Temporal workflow closes."""
    now = time.time()
    tx.executemany(SAVE, [_columns(view, codec, now) for view in views])


def _columns(view: SagaView, codec: Views, now: float) -> tuple[object, ...]:
    current = outcome(view, codec.spec_of(view))
    waiting = current.status is SagaStatus.NEEDS_INTERVENTION and not current.resolved
    ended = current.status.terminal and not waiting  # a saga waiting for a person is open
    failed = current.failed_compensations
    end = view.end
    settled = end.at if end is not None and end.status is current.status and end.at else now
    return (
        codec.dump(view),
        current.status.value,
        phase_of(view),
        str(current.reason) if current.reason else None,
        current.failed_step,
        in_flight(current),
        failed[0] if failed else None,
        int(waiting),
        now,
        int(current.status.terminal),
        current.status.value,
        settled,
        int(ended),
        now,
        view.saga_id,
    )


def record_end(tx: Tx, saga_id: str, end: Ended, codec: Views) -> None:
    """In the transaction that closes the order: the end joins the saga's view (a saga that
    waited for an operator may still become COMPENSATED)."""
    for view in load(tx, [saga_id], codec).values():
        waited = view.end is not None and view.end.status is SagaStatus.NEEDS_INTERVENTION
        if view.end is None or (waited and end.status is SagaStatus.COMPENSATED):
            save(tx, [view.model_copy(update={"end": end})], codec)


def _placed(tx: Tx, saga_id: str) -> str:
    row = tx.fetchone("SELECT placed FROM sagas WHERE saga_id = ?", (saga_id,))
    assert row is not None
    return str(row["placed"])


def in_flight(current: SagaOutcome) -> StepId | None:
    """The step or compensation a saga waits on (what a stuck saga is stuck in)."""
    running = [s.step for s in current.steps if s.status is StepStatus.RUNNING]
    return running[-1] if running else None
