"""The `Tracker`: the one object the rest of the variant holds, over the tracker's four parts.

The projector folds events and records ends, the deadlines arm timers and issue cancels, the
operator actions carry out retries and resolutions, the queries answer reads and waits. They
share the orders store and the ``sagas`` table; what one part does that another must hear of
(a saga settled, a view changed) goes through the facade's `ended` and the queries' `wake`.
All four read and write views as the tracker's `Views` says (`choreography/views.py`): the
tracker's own release's shape, and other releases' as its event versioning setting reads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from choreography.bus import Delivery, Outgoing
from choreography.events import Event, Routing
from choreography.projection import SagaView, cause
from choreography.tracker import table
from choreography.tracker.deadlines import Deadlines
from choreography.tracker.operator_actions import OperatorActions
from choreography.tracker.projector import EndHook, Projector
from choreography.tracker.queries import Intervention, Queries
from choreography.versions import Reader
from choreography.views import Views
from shared.contracts import OperatorAction, Reason, ReasonId, SagaOutcome
from shared.saga import SagaSpec
from shared.services.orders import OrdersService
from shared.store import Tx


class Tracker:
    """Projection, deadlines, end decisions, operator actions and queries over the orders
    store. Built in every process that reads sagas; started only where the tracker runs."""

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
        self.queries = Queries(self.store, self.views, poll_s=poll_s)
        self.deadlines = Deadlines(self.store, self.views, hand_over)
        self.projector = Projector(
            orders,
            self.views,
            hand_over,
            on_end,
            watch=self.deadlines.watch,
            changed=self.queries.wake,
            ended=self.ended,
        )
        self.actions = OperatorActions(self.store, self.views, hand_over, self.ended)

    @property
    def saga(self) -> SagaSpec:
        return self.routing.saga

    # -- lifecycle (only where the tracker runs) ----------------------------------------------

    async def start(self) -> None:
        """Arm the deadlines of open sagas and finish any end decided but not recorded."""
        self.deadlines.arm()
        for saga_id, deadline_at, view in await table.open_sagas(self.store, self.views):
            if cause(view) is None:
                self.deadlines.watch(saga_id, deadline_at)
            else:
                await self.projector.settle(saga_id)

    async def stop(self) -> None:
        """Disarm the deadlines; a cancel being written finishes (it is short)."""
        await self.deadlines.stop()

    def ended(self, saga_id: str) -> None:
        """The saga settled: drop its deadline, wake whoever waits for it in this process."""
        self.deadlines.disarm(saga_id)
        self.queries.wake(saga_id)

    # -- the projector ---------------------------------------------------------------------

    def record_start(self, tx: Tx, event: Event, traceparent: str | None) -> None:
        """The saga's view, written in the transaction that places the order."""
        self.projector.record_start(tx, event, traceparent)

    def record_rejected(
        self, tx: Tx, event: Event, reason: ReasonId, traceparent: str | None
    ) -> Outgoing | None:
        """A saga refused on arrival (REJECTED), written with the refused order; its notice."""
        return self.projector.record_rejected(tx, event, reason, traceparent)

    async def project(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """The projection consumer's batch handler: returns the poison deliveries."""
        return await self.projector.project(deliveries)

    async def settle(self, saga_id: str) -> None:
        await self.projector.settle(saga_id)

    async def settle_view(self, view: SagaView, headers: Mapping[str, str] | None = None) -> None:
        await self.projector.settle_view(view, headers)

    # -- deadlines and cancels -------------------------------------------------------------

    def watch(self, saga_id: str, deadline_at: float) -> None:
        """Arm the saga's business deadline (a no-op where the tracker is not started)."""
        self.deadlines.watch(saga_id, deadline_at)

    async def request_cancel(self, saga_id: str, reason: Reason) -> bool:
        """``order.cancel_requested`` unless past the pivot or ending; whether it was sent."""
        return await self.deadlines.request_cancel(saga_id, reason)

    # -- operator actions ------------------------------------------------------------------

    async def retry_compensation(
        self, saga_id: str, who: str, *, command: str | None = None
    ) -> OperatorAction:
        return await self.actions.retry_compensation(saga_id, who, command=command)

    async def retry_step(
        self, saga_id: str, who: str, *, command: str | None = None
    ) -> OperatorAction:
        return await self.actions.retry_step(saga_id, who, command=command)

    async def resolve(
        self, saga_id: str, who: str, note: str, *, command: str | None = None
    ) -> OperatorAction:
        return await self.actions.resolve(saga_id, who, note, command=command)

    # -- queries ---------------------------------------------------------------------------

    async def view(self, saga_id: str) -> SagaView:
        return await self.queries.view(saga_id)

    def outcome(self, view: SagaView) -> SagaOutcome:
        """The saga's live state, by the steps of the definition it runs (as far as known)."""
        return self.queries.outcome(view)

    async def describe(self, saga_id: str) -> SagaOutcome:
        return await self.queries.describe(saga_id)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        return await self.queries.wait(saga_id, timeout_s)

    async def wait_action(self, saga_id: str, index: int, timeout_s: float) -> OperatorAction:
        return await self.queries.wait_action(saga_id, index, timeout_s)

    async def interventions(self, *, include_resolved: bool = False) -> list[Intervention]:
        return await self.queries.interventions(include_resolved=include_resolved)
