"""The only module that knows NATS: publish batches, durable pull consumers, dead letters.

A consumer is one durable pull consumer per service (``filter_subjects`` = exactly the events
the service reacts to, explicit ack, ``max_deliver`` set). The fetch loop keeps each saga's
messages in stream order ("lanes" keyed by the subject's last token, the saga id) while
different sagas run side by side, so one hanging saga does not stall the others. A handler
that returns acks; ``Retry`` naks with a delay (a plain nak redelivers at once); ``Poison`` or
exhausted deliveries copy the message (headers and body) to ``dlq.<service>.<subject>`` and
then ``term()`` it.

Spans follow the OTel messaging conventions (messaging.system ``nats``): the relay's publish is
a PRODUCER ``send <template>`` span per message and every handled message a CONSUMER
``process <template>`` span, both parented on the message's creation context (the stored
``traceparent`` header; the consumer keeps it as a link too), so a saga is one trace. Span names
use the destination template ``saga.<service>.<event>.{saga_id}`` (low cardinality); the
attributes carry the subject itself, the template, the connected server's address and port, the
durable (consumer group), the message id and the saga id (conversation id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError, UnexpectedEOF
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from choreography.broker import SAGA_STREAM
from shared.telemetry import SAGA_ID, SAGA_VARIANT

log = logging.getLogger(__name__)

CONSUMER_SETUP_ATTEMPTS = 3
"""Requests to create or update a durable before giving up. Creating one is idempotent, and on a
busy machine an R3 cluster's meta leader was seen answering after the client's 10 s timeout."""
_tracer = trace.get_tracer("saga-compare.choreography.bus")

STATUS_HEADER = "Status"
SAGA_ID_TOKEN = "{saga_id}"
SAGA_ID_HEADER = "Saga-Id"
MSG_ID_HEADER = "Nats-Msg-Id"
PUBLISH_TIMEOUT_S = 10.0
FIRST_CONNECT_ATTEMPTS = 3


class Retry(Exception):
    """Handled later: nak with this delay (the handler's backoff), unless deliveries ran out."""

    def __init__(self, delay_s: float, message: str = "") -> None:
        super().__init__(message or f"retry in {delay_s:.3f}s")
        self.delay_s = delay_s


class Poison(Exception):
    """Never handleable (undecodable, unknown): dead-letter it and stop redelivery."""


@dataclass(frozen=True)
class Outgoing:
    """A message to publish; ``msg_id`` becomes ``Nats-Msg-Id`` so the broker dedupes it."""

    subject: str
    body: bytes
    headers: Mapping[str, str]
    msg_id: str

    @property
    def saga_id(self) -> str:
        """The saga the message belongs to (its ``Saga-Id`` header, else the subject's tail)."""
        return self.headers.get(SAGA_ID_HEADER) or self.subject.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Delivery:
    """What a handler sees of a JetStream message."""

    subject: str
    data: bytes
    headers: Mapping[str, str]
    num_delivered: int
    stream_seq: int


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[Sequence[Delivery]], Awaitable[Sequence[Delivery]]]
"""Handles a whole batch in order; returns the deliveries that are poison (the rest are acked)."""
LaneKey = Callable[[str], str | None]
"""Which lane a subject belongs to; None runs the message at once, beside its saga's lane."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer and how the loop drives it."""

    durable: str
    service: str
    filter_subjects: tuple[str, ...]
    ack_wait_s: float = 2.0
    """Short, kept alive by in-progress acks while a handler works: a dead process's messages
    come back quickly."""
    max_deliver: int = 1000
    max_ack_pending: int = 2000
    batch: int = 128
    max_inflight: int = 256
    stream: str = SAGA_STREAM
    """The stream the durable reads (the benchmark's floor runs the same loop on its own)."""

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            description=f"saga events for the {self.service} service",
            # A consumer created now starts now: a fresh data folder never replays old sagas.
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.ack_wait_s,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subjects=list(self.filter_subjects),
        )


class Bus:
    """One NATS connection and its JetStream context."""

    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js

    @classmethod
    async def connect(cls, servers: Sequence[str], name: str) -> Bus:
        """Connect, reconnecting forever once connected; a first failure is a ConnectionError."""
        try:
            nc = await nats.connect(
                servers=list(servers),
                name=name,
                max_reconnect_attempts=FIRST_CONNECT_ATTEMPTS,
                reconnect_time_wait=0.5,
                connect_timeout=5,
                error_cb=_quiet,
            )
        except (NatsError, OSError) as error:
            message = f"cannot connect to NATS at {', '.join(servers)}: {error}"
            raise ConnectionError(message) from None
        nc.options["max_reconnect_attempts"] = -1  # connected once: from now on, never give up
        return cls(nc, nc.jetstream(timeout=PUBLISH_TIMEOUT_S))

    async def close(self) -> None:
        """Close without draining: what a stopped process leaves unacked comes back later."""
        with contextlib.suppress(NatsError, OSError):
            await self.nc.close()

    async def publish(self, batch: Sequence[Outgoing]) -> None:
        """Publish in one pipelined batch and wait for every stream ack; raises on any failure.

        Each message gets its PRODUCER ``send`` span, ended when its own ack (or error) is in.
        """
        spans = [self._send_span(item) for item in batch]
        try:
            futures = [
                await self.js.publish_async(
                    item.subject, item.body, headers={**item.headers, MSG_ID_HEADER: item.msg_id}
                )
                for item in batch
            ]
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                acks = await asyncio.gather(*futures, return_exceptions=True)
        except BaseException as error:
            _end_all(spans, error)
            raise
        for span, ack in zip(spans, acks, strict=True):
            _end_send(span, ack)
        failures = [ack for ack in acks if isinstance(ack, BaseException)]
        if failures:
            raise failures[0]

    def _send_span(self, item: Outgoing) -> trace.Span:
        """The send span of one message, a child of the context it was created in."""
        attributes = {
            **message_attributes("send", item.subject, item.msg_id, item.headers, len(item.body)),
            **self.server_attributes(),
        }
        return _tracer.start_span(
            f"send {destination_template(item.subject)}",
            context=propagate.extract(item.headers),
            kind=SpanKind.PRODUCER,
            attributes=attributes,
        )

    def server_attributes(self) -> dict[str, str | int]:
        """``server.address`` and ``server.port`` of the server this connection is on now."""
        url = self.nc.connected_url
        if url is None or url.hostname is None:
            return {}
        return {"server.address": url.hostname, "server.port": url.port or 4222}

    async def ensure_consumer(self, spec: ConsumerSpec) -> None:
        """Create or update the durable (``add_consumer`` updates; ``pull_subscribe`` would not).

        A request that times out is asked again (the same config: idempotent), up to
        `CONSUMER_SETUP_ATTEMPTS` requests.
        """
        for attempt in range(1, CONSUMER_SETUP_ATTEMPTS + 1):
            try:
                await self.js.add_consumer(spec.stream, config=spec.config())
                return
            except nats.errors.TimeoutError:
                if attempt == CONSUMER_SETUP_ATTEMPTS:
                    raise
                log.warning("creating durable %s timed out; asking again", spec.durable)

    async def pause(self, durable: str, seconds: float) -> None:
        """Pause a consumer server-side (a clean outage of one service)."""
        until = datetime.fromtimestamp(time.time() + seconds, UTC)
        await self.js.pause_consumer(SAGA_STREAM, durable, until.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))

    async def dead_letter(self, msg: Msg, service: str, reason: str) -> None:
        """Copy the message, original headers included, to the dead-letter stream.

        The copy's ``Nats-Msg-Id`` names this consumer and stream sequence (the original id
        moves to ``Dlq-Msg-Id``): two consumers dead-lettering one message keep two letters,
        one consumer doing it twice (a crash before ``term``) keeps one.
        """
        meta = msg.metadata
        headers = dict(msg.headers or {})
        original_id = headers.pop(MSG_ID_HEADER, "")
        headers.update(
            {
                MSG_ID_HEADER: f"dlq:{meta.consumer}:{meta.sequence.stream}",
                "Dlq-Msg-Id": original_id,
                "Dlq-Reason": reason.replace("\n", " ")[:500] or "unknown",
                "Dlq-Subject": msg.subject,
                "Dlq-Stream-Seq": str(meta.sequence.stream),
                "Dlq-Consumer": meta.consumer or "",
                "Dlq-Delivered": str(meta.num_delivered),
            }
        )
        await self.js.publish(f"dlq.{service}.{msg.subject}", msg.data, headers=headers)


async def _quiet(error: Exception) -> None:
    """nats-py logs each error with a traceback; a lost connection (it reconnects) is routine."""
    routine = isinstance(error, (OSError, UnexpectedEOF, ConnectionClosedError))
    log.log(logging.DEBUG if routine else logging.WARNING, "nats: %r", error)


def _delivery(msg: Msg) -> Delivery:
    meta = msg.metadata
    return Delivery(
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        num_delivered=meta.num_delivered,
        stream_seq=meta.sequence.stream,
    )


class Puller:
    """A continuous pull on one durable, like nats.go's ``Consume``.

    One pull request is outstanding at a time and each message is handed over the moment it
    arrives: nats-py's ``fetch(n)`` holds a lingering request until ``n`` messages came or it
    expired, which adds up to its whole timeout to the latency of an idle consumer.
    """

    def __init__(self, nc: NatsClient, stream: str, durable: str, expires_s: float = 5.0) -> None:
        self._nc = nc
        self._next = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._expires_s = expires_s
        self._inbox = nc.new_inbox()
        self._sub: Subscription | None = None
        self._queue: deque[Msg] = deque()
        self._ready = asyncio.Event()
        self._outstanding = 0
        self._ended_early = False

    async def start(self) -> None:
        self._sub = await self._nc.subscribe(self._inbox, cb=self._arrived)

    async def close(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(NatsError):
                await self._sub.unsubscribe()
            self._sub = None

    async def take(self, room: int) -> list[Msg]:
        """Up to ``room`` messages, waiting for at least one (or the request's expiry)."""
        if self._outstanding <= 0 and not self._queue:
            if self._ended_early:
                await asyncio.sleep(0.2)  # paused or conflicting consumer: do not spin
            self._ended_early = False
            await self._request(room)
        if not self._queue:
            self._ready.clear()
            try:
                async with asyncio.timeout(self._expires_s + 1.0):
                    await self._ready.wait()
            except TimeoutError:
                self._outstanding = 0  # the request was lost (a reconnect): ask again
        taken = [self._queue.popleft() for _ in range(min(room, len(self._queue)))]
        return taken

    async def _request(self, batch: int) -> None:
        self._outstanding = batch
        request = {"batch": batch, "expires": int(self._expires_s * 1e9)}
        await self._nc.publish(self._next, json.dumps(request).encode(), reply=self._inbox)

    async def _arrived(self, msg: Msg) -> None:
        status = (msg.headers or {}).get(STATUS_HEADER)
        if status is None:
            self._queue.append(msg)
            self._outstanding -= 1
        elif status != "100":  # 404/408: the request ended; 409: paused, deleted, ...
            self._ended_early = status != "408"
            self._outstanding = 0
        self._ready.set()


@dataclass
class _Pending:
    msg: Msg
    since: float
    handled: bool = False


@dataclass
class _ConsumerBase(ABC):
    """The fetch loop, in-progress heartbeats and outcomes shared by both consumer kinds."""

    bus: Bus
    spec: ConsumerSpec
    _tasks: set[asyncio.Future[Any]] = field(default_factory=set)
    _pending: dict[int, _Pending] = field(default_factory=dict)
    _room: asyncio.Event = field(default_factory=asyncio.Event)
    _loop: asyncio.Task[None] | None = None
    _beat: asyncio.Task[None] | None = None
    _closed: bool = False
    _puller: Puller | None = None

    async def start(self) -> None:
        await self.bus.ensure_consumer(self.spec)
        self._puller = Puller(self.bus.nc, self.spec.stream, self.spec.durable)
        await self._puller.start()
        self._loop = asyncio.create_task(self._fetch_loop(), name=f"fetch {self.spec.durable}")
        self._loop.add_done_callback(self._loop_ended)
        self._beat = asyncio.create_task(self._heartbeat(), name=f"beat {self.spec.durable}")

    async def stop(self, grace_s: float = 5.0) -> None:
        """Stop fetching and let running handlers finish; cancel only what overruns ``grace_s``.

        Handlers are not cancelled outright: a cancel landing on a store's ``BEGIN`` would leave
        that connection inside a transaction (a dead process's connection would just close).
        """
        self._closed = True
        for looping in (self._loop, self._beat):
            if looping is not None and looping is not asyncio.current_task():
                looping.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=grace_s)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(
            *(t for t in (self._loop, self._beat, *self._tasks) if t), return_exceptions=True
        )
        if self._puller is not None:
            await self._puller.close()

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("fetch loop of %s died", self.spec.durable, exc_info=task.exception())

    async def _fetch_loop(self) -> None:
        assert self._puller is not None
        while not self._closed:
            room = self.spec.max_inflight - len(self._pending)
            if room <= 0:
                self._room.clear()
                await self._room.wait()
                continue
            try:
                msgs = await self._puller.take(min(room, self.spec.batch))
            except NatsError as error:
                log.debug("pull %s: %s", self.spec.durable, error)  # a reconnect
                await asyncio.sleep(0.2)
                continue
            if self._closed:
                return  # fetched after a stop: left unacked, the server redelivers them
            now = time.monotonic()
            for msg in msgs:
                self._pending[id(msg)] = _Pending(msg, now)
            await self._dispatch(msgs)

    @abstractmethod
    async def _dispatch(self, msgs: list[Msg]) -> None:
        """Hand a fetched batch to the handler: per-saga lanes or the whole batch in order."""

    async def _heartbeat(self) -> None:
        """Tell the server every fetched message is still being worked on (queued ones too)."""
        period = self.spec.ack_wait_s / 3
        while not self._closed:
            await asyncio.sleep(period)
            now = time.monotonic()
            for pending in list(self._pending.values()):
                if not pending.handled and now - pending.since >= period:
                    pending.since = now
                    with contextlib.suppress(NatsError):
                        await pending.msg.in_progress()

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _done(self, msg: Msg) -> None:
        self._pending.pop(id(msg), None)
        self._room.set()

    async def _settle(self, msg: Msg, outcome: BaseException | None) -> str:
        """Ack, nak(delay) or dead-letter+term one message; returns what was done."""
        pending = self._pending.get(id(msg))
        if pending is not None:
            pending.handled = True
        try:
            return await self._answer(msg, outcome)
        except NatsError as error:
            log.warning("could not settle %s: %s", msg.subject, error)
            return "unsettled"
        finally:
            self._done(msg)

    async def _answer(self, msg: Msg, outcome: BaseException | None) -> str:
        if outcome is None:
            await msg.ack()
            return "ack"
        delivered = msg.metadata.num_delivered
        if isinstance(outcome, Retry) and delivered < self.spec.max_deliver:
            await msg.nak(delay=outcome.delay_s)
            return "nak"
        reason = str(outcome) if isinstance(outcome, Poison) else f"deliveries exhausted: {outcome}"
        await self.bus.dead_letter(msg, self.spec.service, reason)
        await msg.term()
        return "term"


@dataclass
class LaneConsumer(_ConsumerBase):
    """Per-message handling; one saga's messages in order, different sagas concurrently."""

    handler: Handler | None = None
    lane_key: LaneKey = lambda subject: subject.rsplit(".", 1)[-1]
    _lanes: dict[str, deque[Msg]] = field(default_factory=dict)

    async def _dispatch(self, msgs: list[Msg]) -> None:
        # Messages outside any lane (a cancel) start first: they overtake their saga's queue.
        for msg in sorted(msgs, key=lambda m: self.lane_key(m.subject) is not None):
            key = self.lane_key(msg.subject)
            if key is None:
                self._spawn(self._handle(msg), f"{self.spec.durable} {msg.subject}")
                continue
            lane = self._lanes.get(key)
            if lane is not None:
                lane.append(msg)
                continue
            self._lanes[key] = deque([msg])
            self._spawn(self._run_lane(key), f"{self.spec.durable} lane {key}")

    async def _run_lane(self, key: str) -> None:
        lane = self._lanes[key]
        try:
            while lane and not self._closed:
                await self._handle(lane[0])
                lane.popleft()
        finally:
            if self._lanes.get(key) is lane:
                del self._lanes[key]

    async def _handle(self, msg: Msg) -> None:
        assert self.handler is not None
        delivery = _delivery(msg)
        with _process_span(self.bus, delivery, self.spec) as span:
            outcome: BaseException | None = None
            try:
                await self.handler(delivery)
            except asyncio.CancelledError:
                raise
            except (Retry, Poison) as error:
                outcome = error
            except Exception as error:
                log.exception("handler for %s failed unexpectedly", msg.subject)
                outcome = Retry(1.0, f"{type(error).__name__}: {error}")
            answer = await self._settle(msg, outcome)
            span.set_attribute("messaging.nats.ack", answer)
            if answer == "term":
                span.set_status(Status(StatusCode.ERROR, str(outcome)))


@dataclass
class BatchConsumer(_ConsumerBase):
    """Whole batches in stream order through one handler (the tracker's projection)."""

    batch_handler: BatchHandler | None = None
    retry_s: float = 0.5

    async def _dispatch(self, msgs: list[Msg]) -> None:
        assert self.batch_handler is not None
        deliveries = [_delivery(msg) for msg in msgs]
        handling = asyncio.ensure_future(self.batch_handler(deliveries))
        self._tasks.add(handling)
        handling.add_done_callback(self._tasks.discard)
        try:
            # Shielded: stopping the fetch loop must not cancel a batch inside its transaction.
            poison = set(map(id, await asyncio.shield(handling)))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("batch handler of %s failed", self.spec.durable)
            for msg in msgs:
                await self._settle(msg, Retry(self.retry_s))
            return
        for msg, delivery in zip(msgs, deliveries, strict=True):
            outcome = Poison("undecodable saga event") if id(delivery) in poison else None
            await self._settle(msg, outcome)


def destination_template(subject: str) -> str:
    """The subject with its saga id replaced by ``{saga_id}``: what span names show."""
    head, _, _ = subject.rpartition(".")
    saga_scoped = subject.startswith(("saga.", "front."))
    return f"{head}.{SAGA_ID_TOKEN}" if saga_scoped and head else subject


def message_attributes(
    operation: str, subject: str, msg_id: str, headers: Mapping[str, str], size: int
) -> dict[str, str | int]:
    """The messaging attributes of one NATS message, and the saga it belongs to."""
    saga_id = headers.get(SAGA_ID_HEADER) or subject.rsplit(".", 1)[-1]
    return {
        "messaging.system": "nats",
        "messaging.operation.type": operation,
        "messaging.operation.name": operation,
        "messaging.destination.name": subject,
        "messaging.destination.template": destination_template(subject),
        "messaging.message.id": msg_id,
        "messaging.message.conversation_id": saga_id,
        "messaging.message.body.size": size,
        SAGA_ID: saga_id,
        SAGA_VARIANT: "choreography",
    }


def _end_send(span: trace.Span, ack: object) -> None:
    if isinstance(ack, BaseException):
        span.set_status(Status(StatusCode.ERROR, f"{type(ack).__name__}: {ack}"))
    else:
        span.set_attribute("messaging.nats.duplicate", bool(getattr(ack, "duplicate", False)))
    span.end()


def _end_all(spans: Sequence[trace.Span], error: BaseException) -> None:
    for span in spans:
        _end_send(span, error)


@contextlib.contextmanager
def _process_span(bus: Bus, delivery: Delivery, spec: ConsumerSpec) -> Iterator[trace.Span]:
    """The OTel messaging CONSUMER span: creation context as parent, and as a link."""
    context = propagate.extract(delivery.headers)
    parent = trace.get_current_span(context).get_span_context()
    msg_id = delivery.headers.get(MSG_ID_HEADER, "")
    attributes: dict[str, str | int] = {
        **message_attributes(
            "process", delivery.subject, msg_id, delivery.headers, len(delivery.data)
        ),
        **bus.server_attributes(),
        "messaging.consumer.group.name": spec.durable,
        "messaging.nats.num_delivered": delivery.num_delivered,
    }
    with _tracer.start_as_current_span(
        f"process {destination_template(delivery.subject)}",
        context=context,
        kind=SpanKind.CONSUMER,
        links=[Link(parent)] if parent.is_valid else [],
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span
