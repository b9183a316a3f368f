"""The business deadline, and the cancel it issues: what nobody else in a choreography notices.

A timer per open saga at its ``deadline_at`` (wall clock, so it survives restarts: the tracker
re-arms them from the views when it starts). When one fires, or a customer cancels, the saga
gets ``order.cancel_requested`` — unless it passed its pivot or something already turned it to
compensation — written to the orders outbox with the view it folds into.
"""

from __future__ import annotations

import asyncio
import logging
import time

from opentelemetry import propagate, trace

from choreography import outbox
from choreography.bus import Outgoing
from choreography.events import CANCEL_REQUESTED, Event
from choreography.projection import cause, fold, started_steps, status_of
from choreography.tracker import table
from choreography.views import Views
from shared.contracts import Reason
from shared.runtime import UnknownSaga
from shared.store import Store, Tx
from shared.telemetry import SAGA_ID, SAGA_VARIANT

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("saga-compare.choreography.tracker")


class Deadlines:
    """The timers of the open sagas in this process, and cancel issuance."""

    def __init__(self, store: Store, views: Views, hand_over: table.HandOver) -> None:
        self.store = store
        self.views = views
        self.hand_over = hand_over
        self.running = False
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def arm(self) -> None:
        """From now on `watch` arms timers (only where the tracker runs)."""
        self.running = True

    async def stop(self) -> None:
        """Disarm every deadline; a cancel being written finishes (it is short)."""
        self.disarm_all()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def disarm_all(self) -> None:
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

    def disarm(self, saga_id: str) -> None:
        """The saga settled: its deadline no longer matters."""
        timer = self._timers.pop(saga_id, None)
        if timer is not None:
            timer.cancel()

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
        row = tx.fetchone(
            f"SELECT placed, view FROM sagas WHERE saga_id = ?{tx.dialect.for_update()}",
            (saga_id,),
        )
        if row is None:
            return None
        view = self.views.load(row["view"], row["placed"])
        if status_of(view).terminal or view.pivot_passed or cause(view) is not None:
            return None
        placed = Event.model_validate_json(row["placed"]).in_envelope(self.views.shape)
        at = placed.deadline_at if reason is Reason.TIMED_OUT else time.time()
        routing = self.views.routing_of(view)  # the saga's own definition's steps
        trail = started_steps(view, routing.saga)
        cancel = placed.follow(CANCEL_REQUESTED, trail=trail, reason=reason, at=at)
        table.save(tx, [fold(view, cancel, routing)], self.views)
        return outbox.add(tx, cancel)
