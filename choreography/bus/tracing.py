"""The OTel messaging spans of the bus: a PRODUCER ``send`` per published message and a
CONSUMER ``process`` per handled one (messaging.system ``nats``).

Both are parented on the message's creation context (the stored ``traceparent`` header; the
consumer keeps it as a link too), so a saga is one trace. Span names use the destination
template ``saga.<service>.<event>.{saga_id}`` (low cardinality); the attributes carry the
subject itself, the template, the connected server's address and port, the durable (consumer
group), the message id and the saga id (conversation id).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from nats.aio.client import Client as NatsClient
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from choreography.bus.messages import MSG_ID_HEADER, SAGA_ID_HEADER, Delivery, Outgoing
from shared.telemetry import SAGA_ID, SAGA_VARIANT

_tracer = trace.get_tracer("saga-compare.choreography.bus")

SAGA_ID_TOKEN = "{saga_id}"


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


def server_attributes(nc: NatsClient) -> dict[str, str | int]:
    """``server.address`` and ``server.port`` of the server the connection is on now."""
    url = nc.connected_url
    if url is None or url.hostname is None:
        return {}
    return {"server.address": url.hostname, "server.port": url.port or 4222}


def send_span(item: Outgoing, server: Mapping[str, str | int]) -> trace.Span:
    """The PRODUCER span of one message's publish, a child of the context it was created in."""
    attributes = {
        **message_attributes("send", item.subject, item.msg_id, item.headers, len(item.body)),
        **server,
    }
    return _tracer.start_span(
        f"send {destination_template(item.subject)}",
        context=propagate.extract(item.headers),
        kind=SpanKind.PRODUCER,
        attributes=attributes,
    )


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
    """The CONSUMER span of one handled message: creation context as parent, and as a link."""
    context = propagate.extract(delivery.headers)
    parent = trace.get_current_span(context).get_span_context()
    msg_id = delivery.headers.get(MSG_ID_HEADER, "")
    attributes: dict[str, str | int] = {
        **message_attributes(
            "process", delivery.subject, msg_id, delivery.headers, len(delivery.data)
        ),
        **server,
        "messaging.consumer.group.name": durable,
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


def settled(span: trace.Span, answer: str, outcome: BaseException | None) -> None:
    """Record on a process span how its message was settled (a term is an error)."""
    span.set_attribute("messaging.nats.ack", answer)
    if answer == "term":
        span.set_status(Status(StatusCode.ERROR, str(outcome)))
