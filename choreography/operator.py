"""Operator commands over NATS: how a front door (the monitor over a deployment) asks the tracker.

The tracker runs in a process of its own kind (`--service tracker`, beside the orders
service, or in one running them all); a monitor attached to a deployment only has the
broker and the projection. It acts by publishing a **command** on the ``SAGA`` stream,
``operator.retry_requested.<saga_id>``, ``operator.retry_step_requested.<saga_id>`` or
``operator.resolve_requested.<saga_id>`` (an `OperatorCommand`: saga, who, note, and a command
id that is also its ``Nats-Msg-Id``), and the tracker host's `OperatorDesk` (durable
``operator``) performs it through the tracker's `retry_compensation` / `retry_step` /
`resolve` — the same methods the embedded runtime calls — exactly once:
the command id joins the orders store's inbox in the transaction that records the action (or
the refusal), so a redelivered command is acknowledged and does nothing.

The answer is a request/reply: the command names a reply subject (a NATS inbox the caller
subscribed to before publishing) and the desk answers there once the action is recorded —
the action as recorded, or the one-line refusal (`NotAwaitingOperator`); a desk that does
not know the saga (another deployment sharing the broker) stays silent. A
retry's result then follows from the round's answers, which the caller reads from the
projection as the embedded runtime does (`Tracker.wait_action`). The command is durable
either way: if the tracker's process is down, the caller hears nothing in time
(`OperatorUnavailable`) and the action happens once the process is back.

An action is saga work: it runs under a span of the saga's own trace (`acting_on`), whoever
asks (a monitor's request carries no trace), so the command, the desk's handling and the
retried compensations all land in the trace the saga started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.errors import NotFoundError
from opentelemetry import propagate
from opentelemetry.context import Context
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from choreography.broker import SAGA_STREAM
from choreography.bus import SAGA_ID_HEADER, Bus, Delivery, Outgoing, Poison
from choreography.tracker import DuplicateCommand, Tracker, check_waiting
from shared.contracts import Action, ActionResult, OperatorAction
from shared.runtime import NotAwaitingOperator, OperatorUnavailable, UnknownSaga
from shared.store import Store
from shared.telemetry import SAGA_ID, SAGA_VARIANT, get_tracer

log = logging.getLogger(__name__)
_tracer = get_tracer("saga-compare.choreography.operator")

ROOT = "operator"
SUBJECTS = (f"{ROOT}.>",)
"""What the ``SAGA`` stream keeps besides the saga events: operator commands."""
RETRY_REQUESTED = f"{ROOT}.retry_requested"
RETRY_STEP_REQUESTED = f"{ROOT}.retry_step_requested"
RESOLVE_REQUESTED = f"{ROOT}.resolve_requested"
KINDS = {
    Action.RETRY_COMPENSATION: RETRY_REQUESTED,
    Action.RETRY_STEP: RETRY_STEP_REQUESTED,
    Action.RESOLVE: RESOLVE_REQUESTED,
}
DURABLE = "operator"
"""The tracker host's durable consumer of operator commands (plus the consumer suffix)."""
ANSWER_TIMEOUT_S = 10.0
"""How long a caller waits for the desk to record (or refuse) the action."""
RESULT_TIMEOUT_S = 300.0
"""How long a caller waits for a retry round's result once it was recorded (it goes on)."""


def subject(action: Action, saga_id: str) -> str:
    return f"{KINDS[action]}.{saga_id}"


async def saga_trace(store: Store, saga_id: str) -> Context | None:
    """The saga's first trace context, as the tracker stored it when the order was placed."""
    rows = await store.query("SELECT traceparent FROM sagas WHERE saga_id = ?", (saga_id,))
    traceparent = rows[0]["traceparent"] if rows else None
    return propagate.extract({"traceparent": traceparent}) if traceparent else None


@contextlib.asynccontextmanager
async def acting_on(store: Store, saga_id: str, action: str) -> AsyncIterator[None]:
    """An operator's action as a span of the saga's own trace (``store``: the tracker's)."""
    context = await saga_trace(store, saga_id)
    attributes = {SAGA_ID: saga_id, SAGA_VARIANT: "choreography"}
    with _tracer.start_as_current_span(
        f"operator {action}", context=context, attributes=attributes
    ):
        yield


class OperatorCommand(BaseModel):
    """An operator's request for one action on one saga."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command_id: str = Field(min_length=1, max_length=100)
    action: Action
    saga_id: str = Field(min_length=1, max_length=200)
    who: str = Field(min_length=1, max_length=100)
    note: str = Field(default="", max_length=500)
    at: float
    reply_to: str | None = Field(default=None, max_length=200, pattern=r"^_INBOX\.[\w.-]+$")
    """A NATS inbox the caller listens on for the `Answer` (none: nobody waits); never a saga
    subject, which the tracker's user may publish on."""


class Answer(BaseModel):
    """The desk's reply: the action as recorded, or why it was refused, or that the command
    had been handled already (a redelivery)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: OperatorAction | None = None
    refused: str | None = None
    duplicate: bool = False


Reply = Callable[[str, bytes], Awaitable[None]]


class OperatorDesk:
    """The tracker host's side: performs each command once through the tracker, answers."""

    def __init__(self, tracker: Tracker, reply: Reply) -> None:
        self.tracker = tracker
        self.reply = reply

    async def handle(self, delivery: Delivery) -> None:
        """The bus handler of ``operator.>``; raises Poison for anything undecodable."""
        command = decode(delivery)
        try:
            answer = Answer(action=await self._perform(command))
        except DuplicateCommand:
            log.info("operator command %s redelivered: already handled", command.command_id)
            answer = Answer(duplicate=True)
        except NotAwaitingOperator as refused:
            answer = Answer(refused=str(refused))
        except UnknownSaga:
            # Not a saga of this deployment (several may share a broker, each with its own
            # durables): the one that has it answers. The caller checked that it exists.
            log.info("operator command %s for unknown saga %s", command.command_id, command.saga_id)
            return
        if command.reply_to:
            try:
                await self.reply(command.reply_to, answer.model_dump_json().encode())
            except (NatsError, OSError) as error:  # the action stands; the caller times out
                log.warning("could not answer operator command %s: %s", command.command_id, error)

    async def _perform(self, command: OperatorCommand) -> OperatorAction:
        if command.action is Action.RETRY_COMPENSATION:
            return await self.tracker.retry_compensation(
                command.saga_id, command.who, command=command.command_id
            )
        if command.action is Action.RETRY_STEP:
            return await self.tracker.retry_step(
                command.saga_id, command.who, command=command.command_id
            )
        return await self.tracker.resolve(
            command.saga_id, command.who, command.note, command=command.command_id
        )


def decode(delivery: Delivery) -> OperatorCommand:
    try:
        command = OperatorCommand.model_validate_json(delivery.data)
    except ValidationError as error:
        problem = error.errors()[0]["msg"]
        raise Poison(f"undecodable operator command on {delivery.subject}: {problem}") from None
    if delivery.subject != subject(command.action, command.saga_id):
        raise Poison(f"operator command {command.command_id} on the wrong subject")
    return command


class OperatorCommands:
    """A front door's operator (the monitor over a deployment): commands to the tracker's
    process, answers by request/reply, results from the tracker's projection.

    ``tracker`` is only read here (a `Tracker` over the orders store, never started).
    """

    def __init__(
        self,
        bus: Bus,
        tracker: Tracker,
        *,
        consumer_suffix: str = "",
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        result_timeout_s: float = RESULT_TIMEOUT_S,
    ) -> None:
        self.bus = bus
        self.tracker = tracker
        self.durable = f"{DURABLE}{consumer_suffix}"
        self.answer_timeout_s = answer_timeout_s
        self.result_timeout_s = result_timeout_s

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        """Ask for a retry of the failed compensations; returns the action once its round's
        result is known."""
        return await self.retry(Action.RETRY_COMPENSATION, saga_id, who)

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        """Ask for the failed step past the pivot to run again; returns the action once its
        round's result is known."""
        return await self.retry(Action.RETRY_STEP, saga_id, who)

    async def retry(self, kind: Action, saga_id: str, who: str) -> OperatorAction:
        """Ask for a retry of either kind; returns the action once its round's result is
        known."""
        action = await self.send(kind, saga_id, who)
        if action.result is not ActionResult.PENDING:
            return action
        actions = (await self.tracker.describe(saga_id)).actions
        index = next(i for i, a in enumerate(actions) if _same(a, action))
        return await self.tracker.wait_action(saga_id, index, self.result_timeout_s)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """Ask for the saga to be marked resolved with a note; returns the recorded action."""
        return await self.send(Action.RESOLVE, saga_id, who, note)

    async def send(self, action: Action, saga_id: str, who: str, note: str = "") -> OperatorAction:
        """Publish one command and wait for the desk's answer: the action as recorded.

        A saga that does not wait for an operator is refused before anything is published
        (the projection says so), and by the desk if that changed meanwhile.
        """
        check_waiting(await self.tracker.describe(saga_id))  # UnknownSaga, NotAwaitingOperator
        await self._desk_exists()
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def arrived(msg: Msg) -> None:
            if not answered.done():
                answered.set_result(msg.data)

        reply_to = self.bus.nc.new_inbox()
        subscription = await self.bus.nc.subscribe(reply_to, cb=arrived)
        command = OperatorCommand(
            command_id=uuid.uuid4().hex,
            action=action,
            saga_id=saga_id,
            who=who,
            note=note,
            at=time.time(),
            reply_to=reply_to,
        )
        try:
            async with acting_on(self.tracker.store, saga_id, action.value):
                await self.bus.publish([outgoing(command)])
                async with asyncio.timeout(self.answer_timeout_s):
                    answer = Answer.model_validate_json(await answered)
        except TimeoutError:
            raise OperatorUnavailable(
                f"the saga tracker has not answered within {self.answer_timeout_s:g}s; the"
                " command is queued and is carried out once it is back"
            ) from None
        finally:
            with contextlib.suppress(NatsError):
                await subscription.unsubscribe()
        return await self._recorded(command, answer)

    async def _recorded(self, command: OperatorCommand, answer: Answer) -> OperatorAction:
        if answer.action is not None:
            return answer.action
        if answer.refused is not None:
            raise NotAwaitingOperator(command.saga_id, _state(answer.refused))
        # A duplicate (only a republished command gets here): its action is the latest one.
        mine = [
            a
            for a in (await self.tracker.describe(command.saga_id)).actions
            if (a.action, a.who) == (command.action, command.who)
        ]
        if not mine:
            raise NotAwaitingOperator(command.saga_id, "refused earlier")
        return mine[-1]

    async def _desk_exists(self) -> None:
        """A command published before the durable exists would never be read: refuse it."""
        try:
            await self.bus.js.consumer_info(SAGA_STREAM, self.durable)
        except NotFoundError:
            raise OperatorUnavailable(
                f"no consumer {self.durable!r} of operator commands on the {SAGA_STREAM} stream:"
                " the deployment's tracker does not take them (start or upgrade it)"
            ) from None


def outgoing(command: OperatorCommand) -> Outgoing:
    """The command as published: its id is its ``Nats-Msg-Id`` (the broker dedupes a repeat)."""
    headers = {SAGA_ID_HEADER: command.saga_id}
    propagate.inject(headers)
    body = command.model_dump_json().encode()
    return Outgoing(subject(command.action, command.saga_id), body, headers, command.command_id)


def _same(a: OperatorAction, b: OperatorAction) -> bool:
    return (a.action, a.who, a.at, a.round) == (b.action, b.who, b.at, b.round)


def _state(refusal: str) -> str:
    """The state a refusal names (``... (it is COMPENSATED)``), to raise it again here."""
    head, _, tail = refusal.rpartition("(it is ")
    return tail.rstrip(")") if head else "not waiting"


__all__ = [
    "DURABLE",
    "SUBJECTS",
    "Answer",
    "OperatorCommand",
    "OperatorCommands",
    "OperatorDesk",
    "acting_on",
    "outgoing",
]
