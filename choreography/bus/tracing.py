"""The OTel messaging spans of the bus: a PRODUCER ``send`` per published message and a
CONSUMER ``process`` per handled one (messaging.system ``nats``).

A message is stored (the outbox row, a command) with the context it was created in; its
``send`` span is a child of that context and is the message's creation context from then on:
the publish carries the send span's ``traceparent``, and each consumer's ``process`` span is
its child, keeping it as a link too, so a saga is one trace with one producer span per message
(the semantic conventions' single ``send`` span when a message is not created apart). Span
names use the destination template ``saga.<service>.<event>.{saga_id}`` (low cardinality);
the attributes carry the subject itself, the template, the connected server's address and
port, the durable (consumer group), the message id and the saga id (conversation id).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from nats.aio.client import Client as NatsClient
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from choreography.bus.messages import MSG_ID_HEADER, SAGA_ID_HEADER, Delivery, Outgoing
from shared import propagation
from shared.telemetry import SAGA_ID, SAGA_VARIANT, get_tracer, recording

_tracer = get_tracer("saga-compare.choreography.bus")

SAGA_ID_TOKEN = "{saga_id}"


def destination_template(subject: str) -> str:
    """The subject with its saga id replaced by ``{saga_id}``: what span names show."""
    head, _, _ = subject.rpartition(".")
    saga_scoped = subject.startswith(SAGA_SCOPED)
    return f"{head}.{SAGA_ID_TOKEN}" if saga_scoped and head else subject


SAGA_SCOPED = ("saga.", "front.")
"""Subjects that end in a saga id."""
KEPT = 1024
"""Destinations whose shared attributes are kept (the saga's are a few dozen); past that the
table starts over, so a stream of one-off subjects cannot grow it."""
_shared: dict[tuple[str, str], tuple[str, dict[str, str | int]]] = {}


def shared_part(operation: str, subject: str) -> tuple[str, dict[str, str | int]]:
    """The span name and the attributes every message of ``operation`` to this destination
    has in common, built once per destination template."""
    saga_scoped = subject.startswith(SAGA_SCOPED)
    key = (operation, subject.rpartition(".")[0] if saga_scoped else subject)
    found = _shared.get(key)
    if found is None:
        if len(_shared) >= KEPT:
            _shared.clear()
        template = destination_template(subject)
        attributes: dict[str, str | int] = {
            "messaging.system": "nats",
            "messaging.operation.type": operation,
            "messaging.operation.name": operation,
            "messaging.destination.template": template,
            SAGA_VARIANT: "choreography",
        }
        found = _shared[key] = (f"{operation} {template}", attributes)
    return found


def message_attributes(
    operation: str, subject: str, msg_id: str, headers: Mapping[str, str], size: int
) -> dict[str, str | int]:
    """The messaging attributes of one NATS message, and the saga it belongs to."""
    saga_id = headers.get(SAGA_ID_HEADER) or subject.rsplit(".", 1)[-1]
    return {
        **shared_part(operation, subject)[1],
        "messaging.destination.name": subject,
        "messaging.message.id": msg_id,
        "messaging.message.conversation_id": saga_id,
        "messaging.message.body.size": size,
        SAGA_ID: saga_id,
    }


class ServerAttributes:
    """``server.address`` and ``server.port`` of the server a connection is on now, parsed
    once per server it connects to (every publish and every handled message asks)."""

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._url: object = None
        self._attributes: dict[str, str | int] = {}

    def __call__(self) -> Mapping[str, str | int]:
        url = self._nc.connected_url
        if url is not self._url:
            self._url, self._attributes = url, server_attributes(self._nc)
        return self._attributes


def server_attributes(nc: NatsClient) -> dict[str, str | int]:
    """``server.address`` and ``server.port`` of the server the connection is on now."""
    url = nc.connected_url
    if url is None or url.hostname is None:
        return {}
    return {"server.address": url.hostname, "server.port": url.port or 4222}


def send_span(item: Outgoing, server: Mapping[str, str | int]) -> trace.Span:
    """The PRODUCER span of one message's publish, a child of the context the message was
    created in (a span that will not be recorded gets no name or attributes built)."""
    context = propagation.extract(item.headers)
    if not recording(context):
        return _tracer.start_span("send", context=context, kind=SpanKind.PRODUCER)
    attributes = message_attributes("send", item.subject, item.msg_id, item.headers, len(item.body))
    attributes.update(server)
    return _tracer.start_span(
        shared_part("send", item.subject)[0],
        context=context,
        kind=SpanKind.PRODUCER,
        attributes=attributes,
    )


def published_headers(item: Outgoing, span: trace.Span) -> dict[str, str]:
    """The headers on the wire: the stored ones, the message id, and for a recorded send span
    its context in place of the creation one (consumers become the send span's children)."""
    headers = {**item.headers, MSG_ID_HEADER: item.msg_id}
    if span.is_recording():
        propagation.inject(headers, trace.set_span_in_context(span, Context()))
    return headers


def end_send(span: trace.Span, ack: object) -> None:
    """End a send span with its stream ack (a dedup hit is marked) or its error."""
    if isinstance(ack, BaseException):
        span.set_status(Status(StatusCode.ERROR, f"{type(ack).__name__}: {ack}"))
    else:
        span.set_attribute("messaging.nats.duplicate", bool(getattr(ack, "duplicate", False)))
    span.end()


def end_all(spans: Sequence[trace.Span], error: BaseException) -> None:
    """End every send span of a batch whose publish failed as a whole."""
    for span in spans:
        end_send(span, error)


@contextlib.contextmanager
def process_span(
    delivery: Delivery, durable: str, server: Mapping[str, str | int]
) -> Iterator[trace.Span]:
    """The CONSUMER span of one handled message: the send span as parent, and as a link
    (a span that will not be recorded only makes that context current: nothing is built)."""
    context = propagation.extract(delivery.headers)
    if not recording(context):
        with _tracer.start_as_current_span(
            "process", context=context, kind=SpanKind.CONSUMER
        ) as span:
            yield span
        return
    parent = trace.get_current_span(context).get_span_context()
    msg_id = delivery.headers.get(MSG_ID_HEADER, "")
    attributes = message_attributes(
        "process", delivery.subject, msg_id, delivery.headers, len(delivery.data)
    )
    attributes.update(server)
    attributes["messaging.consumer.group.name"] = durable
    attributes["messaging.nats.num_delivered"] = delivery.num_delivered
    with _tracer.start_as_current_span(
        shared_part("process", delivery.subject)[0],
        context=context,
        kind=SpanKind.CONSUMER,
        links=[Link(parent)] if parent.is_valid else [],
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        yield span


def settled(span: trace.Span, answer: str, outcome: BaseException | None) -> None:
    """Record on a process span how its message was settled (a term is an error)."""
    span.set_attribute("messaging.nats.ack", answer)
    if answer == "term":
        span.set_status(Status(StatusCode.ERROR, str(outcome)))
