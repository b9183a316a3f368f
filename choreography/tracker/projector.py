"""The projector: every saga event folded into its saga's view, and the end decided from it.

The view is written first in the transaction that places the order; then each fetched batch
is folded in one transaction (load the batch's views, fold, write back) with the pure fold of
`choreography/projection.py`. Folding is idempotent and order-independent, so a redelivered or
reordered batch is harmless and the projector needs no inbox. After every batch the end is
re-derived from each view (`decide`) and recorded with ``OrdersService.close``, whose ``within``
adds it to the view and writes the front door's notice.

A tracker holds one saga definition; as its event versioning setting says it reads events and
stored views of others (`choreography/versions.py`, `choreography/views.py`): each event is
folded, and each saga decided, by the rules of the definition the saga runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence

from opentelemetry import propagate, trace

from choreography.bus import Delivery, Outgoing, Poison, Retry
from choreography.events import PLACED, Event
from choreography.projection import Ended, SagaView, decide, fold, new_view
from choreography.tracker import table
from choreography.versions import NotOurs
from choreography.views import Views
from shared.contracts import ReasonId, SagaStatus
from shared.runtime import UnknownSaga
from shared.services.orders import OrdersService
from shared.store import Tx
from shared.telemetry import SAGA_ID, SAGA_OUTCOME, SAGA_VARIANT

_tracer = trace.get_tracer("saga-compare.choreography.tracker")

EndHook = Callable[[Tx, str, SagaStatus, ReasonId | None], Outgoing | None]
"""Writes, in the transaction recording a saga's end, a message saying so (the front door's)."""
SagaCallback = Callable[[str], None]


class Projector:
    """Folds batches of saga events into the ``sagas`` table and records the ends they allow."""

    def __init__(
        self,
        orders: OrdersService,
        views: Views,
        hand_over: table.HandOver,
        on_end: EndHook | None,
        *,
        watch: Callable[[str, float], None],
        changed: SagaCallback,
        ended: SagaCallback,
    ) -> None:
        self.orders = orders
        self.store = orders.store
        self.views = views
        self.hand_over = hand_over
        self.on_end = on_end
        self._watch = watch
        self._changed = changed
        self._ended = ended

    def record_start(self, tx: Tx, event: Event, traceparent: str | None) -> None:
        """The saga's view, written in the transaction that places the order."""
        routing = self.views.routing_for(event)
        view = fold(new_view(event, routing.saga, self.views.shape), event, routing)
        table.insert_start(tx, event, view, traceparent, self.views)
        table.save(tx, [view], self.views)

    def record_rejected(
        self, tx: Tx, event: Event, reason: ReasonId, traceparent: str | None
    ) -> Outgoing | None:
        """A saga whose order the desk refused: its view, ended REJECTED before any step, and
        the end's notice, written in the transaction that records the refused order."""
        ended = Ended(status=SagaStatus.REJECTED, reason=reason, at=time.time())
        saga = self.views.routing_for(event).saga
        view = new_view(event, saga, self.views.shape).model_copy(update={"end": ended})
        table.insert_start(tx, event, view, traceparent, self.views)
        table.save(tx, [view], self.views)
        if self.on_end is None:
            return None
        return self.on_end(tx, event.saga_id, SagaStatus.REJECTED, reason)

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
                self._watch(event.saga_id, event.deadline_at)
        views = await self.store.run(lambda tx: self._fold_batch(tx, events)) if events else {}
        for saga_id, view in views.items():
            await self.settle_view(view, touched[saga_id])
            self._changed(saga_id)
        if handed_back is not None:
            # The whole batch is offered again (another instance of this consumer may hold
            # that definition); what was folded here folds again to the same views.
            raise handed_back
        return poison

    def _fold_batch(self, tx: Tx, events: list[Event]) -> dict[str, SagaView]:
        saga_ids = list(dict.fromkeys(event.saga_id for event in events))
        views = table.load(tx, saga_ids, self.views)
        for event in events:
            view = views.get(event.saga_id)
            if view is not None:  # not a saga this deployment started
                views[event.saga_id] = fold(view, event, self.views.routing_for(event))
        table.save(tx, list(views.values()), self.views)
        return views

    async def settle(self, saga_id: str) -> None:
        """Record the saga's end if its view now allows one (idempotent)."""
        view = await table.read_view(self.store, saga_id, self.views)
        if view is None:
            return
        with contextlib.suppress(UnknownSaga):
            await self.settle_view(view)

    async def settle_view(self, view: SagaView, headers: Mapping[str, str] | None = None) -> None:
        """Record the end a freshly folded view allows, or wake waiters of a completed saga."""
        saga_id = view.saga_id
        if view.completed:
            return self._ended(saga_id)
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
                table.record_end(tx, saga_id, ended, self.views)
                if self.on_end is not None:
                    rows.append(self.on_end(tx, saga_id, status, reason))

            await self.orders.close(saga_id, status, reason, within=hook)
        self.hand_over(rows)
        self._ended(saga_id)
