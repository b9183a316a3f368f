"""The choreography's front door: commands in, notices out, over NATS only.

Whoever starts sagas (the harness, in the same process as the services or not) never writes
a service's store. It publishes a **command** on JetStream, deduplicated by ``Nats-Msg-Id``:

- ``front.order.place.<saga_id>`` (a `PlaceCommand`): the orders service's desk admits the
  order (the catalogue, the customer records, the deployment's limits on its policy:
  shared/admission.py, whatever the command's sender checked), then writes the order record,
  the tracker's row and ``order.placed`` to its outbox in one transaction — or, for an order
  it refuses, the order record and the tracker's row REJECTED and the end's notice, and no
  step ever runs;
- ``front.order.cancel.<saga_id>``: the customer's cancel; the desk asks the tracker for
  ``order.cancel_requested`` (nothing happens past the pivot).

and learns what happened from **notices**: ``saga.order.placed.<saga_id>`` (the saga's first
event), ``front.order.rejected.<saga_id>`` (an order the desk refused), and the end of the saga:
``saga.order.completed.<saga_id>`` or ``front.saga.ended.<saga_id>``, which the tracker writes
to the outbox in the transaction that records any other end. A notice missed during a
reconnect is caught by one batched read of the tracker's projection every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from pydantic import BaseModel, ConfigDict

from choreography import outbox
from choreography.bus import (
    SAGA_ID_HEADER,
    Bus,
    Delivery,
    Outgoing,
    Poison,
)
from choreography.events import placed
from choreography.tracker import Tracker, in_flight, table
from shared import propagation
from shared.admission import Admission
from shared.contracts import OrderRequest, Reason, ReasonId, SagaOutcome, SagaPolicy, SagaStatus
from shared.errors import DuplicateOrder, InvalidOrder
from shared.runtime import SagaStuck
from shared.store import Tx

log = logging.getLogger(__name__)

PLACE = "front.order.place"
CANCEL = "front.order.cancel"
REJECTED = "front.order.rejected"
ENDED = "front.saga.ended"
PLACED = "saga.order.placed"
COMPLETED = "saga.order.completed"
COMMANDS = (f"{PLACE}.*", f"{CANCEL}.*")
"""What the orders service's desk consumes."""
SWEEP_S = 2.0
"""How often missed notices are looked for in the projection (one query for all sagas)."""


def subject(prefix: str, saga_id: str) -> str:
    return f"{prefix}.{saga_id}"


class PlaceCommand(BaseModel):
    """Everything the saga's first event carries; the saga's clock starts at ``started_at``
    (never later than when the desk takes the command)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    saga_id: str
    order: OrderRequest
    policy: SagaPolicy = SagaPolicy()
    started_at: float


class EndNotice(BaseModel):
    """The body of ``front.saga.ended.<saga_id>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    saga_id: str
    status: SagaStatus
    reason: ReasonId | None = None


def record_end(
    tx: Tx, saga_id: str, status: SagaStatus, reason: ReasonId | None
) -> Outgoing | None:
    """The tracker's end hook: the notice commits with the end it announces, in the saga's
    trace (under the span deciding the end, or else the saga's own first context)."""
    notice = EndNotice(saga_id=saga_id, status=status, reason=reason)
    body = notice.model_dump_json()
    headers = {SAGA_ID_HEADER: saga_id}
    # The relay's send span of the notice is a child of this context.
    propagate.inject(headers, context=None if _in_a_trace() else saga_context(tx, saga_id))
    return outbox.add_message(tx, subject(ENDED, saga_id), body, f"{saga_id}:ended", headers)


def saga_context(tx: Tx, saga_id: str) -> Context | None:
    """The saga's first trace context, as the tracker stored it when the order was placed."""
    row = tx.fetchone("SELECT traceparent FROM sagas WHERE saga_id = ?", (saga_id,))
    traceparent = row["traceparent"] if row is not None else None
    return propagate.extract({"traceparent": traceparent}) if traceparent else None


def _in_a_trace() -> bool:
    return trace.get_current_span().get_span_context().is_valid


class Desk:
    """The orders service's side: turns commands into the saga's first transaction."""

    def __init__(self, tracker: Tracker, admission: Admission) -> None:
        self.tracker = tracker
        self.admission = admission

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler for ``COMMANDS``; a redelivered command changes nothing."""
        prefix, _, saga_id = delivery.subject.rpartition(".")
        if prefix == PLACE:
            await self._place(_decode(delivery))
        elif prefix == CANCEL:
            await self._cancel(saga_id)
        else:
            raise Poison(f"not a front-door command: {delivery.subject}")

    async def _place(self, command: PlaceCommand) -> None:
        # A clock from the future would push the deadline out: the saga starts now at the latest.
        started_at = min(command.started_at, time.time())
        event = placed(
            command.saga_id,
            command.order,
            command.policy,
            started_at,
            self.tracker.routing.definition.ref,
            self.tracker.routing.definition.release,  # the envelope this release writes
        )
        refused = await self.admission.judge(command.order, command.policy)
        carrier: dict[str, str] = {}
        propagation.inject(carrier)
        rows: list[Outgoing | None] = []

        def hook(tx: Tx) -> None:
            if refused is not None:
                traceparent = carrier.get("traceparent")
                rows.append(self.tracker.record_rejected(tx, event, refused.reason, traceparent))
                return
            self.tracker.record_start(tx, event, carrier.get("traceparent"))
            rows.append(outbox.add(tx, event))

        reason = refused.reason if refused is not None else None
        try:
            placement = await self.tracker.orders.place(
                command.saga_id, command.order, within=hook, rejected=reason
            )
        except InvalidOrder as duplicate:
            rows = [await self._reject(command.saga_id, duplicate)]
            placement = None
        if refused is not None:
            log.info("order of saga %s rejected: %s", command.saga_id, refused)
        self.tracker.hand_over(rows)
        if placement is None or not placement.first:
            return  # a redelivery, or a command for a saga placed before: nothing new to arm
        if placement.rejected:
            self.tracker.ended(command.saga_id)
        else:
            self.tracker.watch(command.saga_id, event.deadline_at)

    async def _reject(self, saga_id: str, refused: InvalidOrder) -> Outgoing | None:
        fields = {"saga_id": saga_id, "error": type(refused).__name__, "message": str(refused)}
        if isinstance(refused, DuplicateOrder):
            fields |= {"order_id": refused.order_id, "holder": refused.saga_id}
        body = json.dumps(fields)
        headers = {SAGA_ID_HEADER: saga_id}
        return await self.tracker.store.run(
            lambda tx: outbox.add_message(
                tx, subject(REJECTED, saga_id), body, f"{saga_id}:rejected", headers
            )
        )

    async def _cancel(self, saga_id: str) -> None:
        try:
            await self.tracker.request_cancel(saga_id, Reason.CANCELLED_BY_CUSTOMER)
        except KeyError:
            log.warning("cancel of unknown saga %s ignored", saga_id)


def _decode(delivery: Delivery) -> PlaceCommand:
    try:
        return PlaceCommand.model_validate_json(delivery.data)
    except ValueError:
        raise Poison(f"undecodable command on {delivery.subject}") from None


class FrontDoor:
    """The caller's side: publishes commands, and is told when sagas are placed and end."""

    def __init__(self, bus: Bus, tracker: Tracker, *, sweep_s: float = SWEEP_S) -> None:
        self.bus = bus
        self.tracker = tracker
        self._sweep_s = sweep_s
        self._placed: dict[str, asyncio.Future[None]] = {}
        self._ended: dict[str, asyncio.Future[None]] = {}
        self._subs: list[Subscription] = []
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for prefix in (PLACED, REJECTED, COMPLETED, ENDED):
            self._subs.append(await self.bus.nc.subscribe(f"{prefix}.*", cb=self._notice))
        self._sweeper = asyncio.create_task(self._sweep(), name="front door sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for sub in self._subs:
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
        self._subs = []

    async def place(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Publish the place command; returns once JetStream has it (durable, deduplicated)."""
        command = PlaceCommand(saga_id=saga_id, order=order, policy=policy, started_at=time.time())
        await self._command(subject(PLACE, saga_id), command.model_dump_json(), f"{saga_id}:place")

    async def cancel(self, saga_id: str) -> None:
        await self._command(subject(CANCEL, saga_id), "{}", f"{saga_id}:cancel")

    async def _command(self, to: str, body: str, msg_id: str) -> None:
        """Publish in the caller's context (the saga's root span): the bus's ``send`` span
        of the command is its child, as for events."""
        headers = {SAGA_ID_HEADER: to.rsplit(".", 1)[-1]}
        propagation.inject(headers)
        await self.bus.publish([Outgoing(to, body.encode(), headers, msg_id)])

    async def until_placed(self, saga_id: str, timeout_s: float) -> None:
        """Wait for the saga's first event; InvalidOrder if the desk refused the order."""
        waiter = self._placed.setdefault(saga_id, _future())
        try:
            if not waiter.done() and await self._known(saga_id):
                return
            async with asyncio.timeout(timeout_s):
                await waiter
        except TimeoutError:
            raise SagaStuck(saga_id, None, timeout_s) from None
        finally:
            self._placed.pop(saga_id, None)

    async def until_ended(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The saga's terminal outcome, once a notice (or the sweep) says it ended.

        A saga the orders service has not placed yet (it is restarting) is waited for too.
        """
        waiter = self._ended.setdefault(saga_id, _future())
        deadline = time.monotonic() + timeout_s
        try:
            outcome = await self._outcome(saga_id)
            if outcome is not None and outcome.status.terminal:
                return outcome
            async with asyncio.timeout(timeout_s):
                await waiter
            # ``order.completed`` is published before the tracker folds it: wait for the view.
            return await self.tracker.wait(saga_id, max(deadline - time.monotonic(), 1.0))
        except TimeoutError:
            outcome = await self._outcome(saga_id)
            step = in_flight(outcome) if outcome is not None else None
            raise SagaStuck(saga_id, step, timeout_s) from None
        finally:
            self._ended.pop(saga_id, None)

    async def _outcome(self, saga_id: str) -> SagaOutcome | None:
        try:
            return await self.tracker.describe(saga_id)
        except KeyError:
            return None

    async def _known(self, saga_id: str) -> bool:
        return await self._outcome(saga_id) is not None

    async def _notice(self, msg: Msg) -> None:
        prefix, _, saga_id = msg.subject.rpartition(".")
        if prefix == REJECTED:
            waiter = self._placed.get(saga_id)
            if waiter is not None and not waiter.done():
                waiter.set_exception(_refusal(msg.data))
        elif prefix == PLACED:
            _settle(self._placed.get(saga_id))
        else:  # a saga that ended was placed (one the desk rejected ends at once)
            _settle(self._placed.get(saga_id))
            _settle(self._ended.get(saga_id))

    async def _sweep(self) -> None:
        """The fallback for notices missed while disconnected: one query per chunk of sagas."""
        while True:
            await asyncio.sleep(self._sweep_s)
            try:
                await self._sweep_once()
            except Exception as error:  # the store or the broker is down: next time
                log.debug("front door sweep: %s", error)

    async def _sweep_once(self) -> None:
        for saga_id in await self._rows(list(self._placed), ended=False):
            _settle(self._placed.get(saga_id))
        for saga_id in await self._rows(list(self._ended), ended=True):
            _settle(self._ended.get(saga_id))

    async def _rows(self, saga_ids: Sequence[str], *, ended: bool) -> list[str]:
        store = self.tracker.store
        if ended:
            rows = await table.rows_of(
                store, "saga_id", saga_ids, " AND status <> ?", (SagaStatus.RUNNING.value,)
            )
        else:
            rows = await table.rows_of(store, "saga_id", saga_ids)
        return [row["saga_id"] for row in rows]


def _future() -> asyncio.Future[None]:
    return asyncio.get_running_loop().create_future()


def _settle(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _refusal(data: bytes) -> InvalidOrder:
    """The desk's refusal as the error the orders service raised (DuplicateOrder kept apart)."""
    try:
        fields = json.loads(data)
        if fields.get("error") == DuplicateOrder.__name__:
            return DuplicateOrder(str(fields["order_id"]), str(fields["holder"]))
        return InvalidOrder(str(fields["message"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return InvalidOrder("the orders service refused the order")


__all__ = [
    "CANCEL",
    "COMMANDS",
    "ENDED",
    "PLACE",
    "Desk",
    "FrontDoor",
    "PlaceCommand",
    "record_end",
]
