"""The bus's messaging spans: a send span under the context a message was created in, whose
own context the message then carries; when the message's trace is not recorded, that context
passed on with nothing built."""

from __future__ import annotations

from typing import cast
from urllib.parse import urlparse

import pytest
from nats.aio.client import Client as NatsClient
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from choreography.bus import tracing
from choreography.bus.messages import MSG_ID_HEADER, SAGA_ID_HEADER, Delivery, Outgoing

SUBJECT = "saga.payment.charged.s-1"
SERVER: dict[str, str | int] = {"server.address": "127.0.0.1", "server.port": 4222}


def headers_of(sampled: bool) -> tuple[dict[str, str], SpanContext]:
    """A message's headers as the outbox stores them, created in a (sampled or not) trace."""
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    created = SpanContext(0x1234, 0x5678, is_remote=False, trace_flags=flags)
    headers = {SAGA_ID_HEADER: "s-1", MSG_ID_HEADER: "s-1:payment.charged"}
    propagate.inject(headers, trace.set_span_in_context(trace.NonRecordingSpan(created)))
    return headers, created


def same(context: SpanContext, created: SpanContext) -> bool:
    """The same span (the one read from the headers is remote)."""
    return (context.trace_id, context.span_id) == (created.trace_id, created.span_id)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The subjects whose messaging attributes were built."""
    subjects: list[str] = []
    real = tracing.message_attributes

    def counted(operation: str, subject: str, *rest: object) -> dict[str, str | int]:
        subjects.append(subject)
        return real(operation, subject, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(tracing, "message_attributes", counted)
    return subjects


def test_a_recorded_message_gets_a_send_span_under_its_creation_with_its_attributes(
    span_exporter: InMemorySpanExporter, built: list[str]
) -> None:
    headers, created = headers_of(sampled=True)

    span = tracing.send_span(Outgoing(SUBJECT, b"{}", headers, "s-1:payment.charged"), SERVER)
    tracing.end_send(span, object())

    [sent] = span_exporter.get_finished_spans()
    assert sent.name == "send saga.payment.charged.{saga_id}" and sent.kind is SpanKind.PRODUCER
    assert sent.parent is not None and sent.parent.span_id == created.span_id
    assert sent.attributes is not None and sent.attributes["server.port"] == 4222
    assert built == [SUBJECT]


def test_a_message_of_an_unrecorded_trace_is_sent_in_its_creation_context_building_nothing(
    span_exporter: InMemorySpanExporter, built: list[str]
) -> None:
    headers, created = headers_of(sampled=False)

    span = tracing.send_span(Outgoing(SUBJECT, b"{}", headers, "s-1:payment.charged"), SERVER)
    tracing.end_send(span, object())

    assert not span.is_recording() and same(span.get_span_context(), created)
    assert span_exporter.get_finished_spans() == () and built == []


def test_a_message_of_an_unrecorded_trace_is_processed_in_its_creation_context(
    span_exporter: InMemorySpanExporter, built: list[str]
) -> None:
    headers, created = headers_of(sampled=False)
    delivery = Delivery(SUBJECT, b"{}", headers, num_delivered=1, stream_seq=7)

    with tracing.process_span(delivery, "inventory", SERVER) as span:
        current = trace.get_current_span().get_span_context()
        tracing.settled(span, "ack", None)

    assert same(current, created) and not span.is_recording()
    assert span_exporter.get_finished_spans() == () and built == []


def test_a_recorded_send_span_is_the_context_the_published_message_carries(
    span_exporter: InMemorySpanExporter,
) -> None:
    headers, _ = headers_of(sampled=True)
    item = Outgoing(SUBJECT, b"{}", headers, "s-1:payment.charged")

    span = tracing.send_span(item, SERVER)
    published = tracing.published_headers(item, span)
    tracing.end_send(span, object())

    carried = trace.get_current_span(propagate.extract(published)).get_span_context()
    assert same(carried, span.get_span_context()) and carried.trace_flags.sampled
    assert published[MSG_ID_HEADER] == "s-1:payment.charged"
    assert published[SAGA_ID_HEADER] == "s-1"
    assert item.headers == headers  # the stored row is not touched


def test_a_message_of_an_unrecorded_trace_is_published_with_its_stored_headers(
    span_exporter: InMemorySpanExporter,
) -> None:
    headers, _ = headers_of(sampled=False)
    item = Outgoing(SUBJECT, b"{}", headers, "s-1:payment.charged")

    published = tracing.published_headers(item, tracing.send_span(item, SERVER))

    assert published == {**headers, MSG_ID_HEADER: "s-1:payment.charged"}


class Connection:
    """What ``ServerAttributes`` reads of a NATS client: the URL it is connected to."""

    def __init__(self, url: str | None) -> None:
        self.connected_url = urlparse(url) if url is not None else None


def test_server_attributes_are_parsed_once_per_server_connected_to() -> None:
    connection = Connection("nats://127.0.0.1:4333")
    server = tracing.ServerAttributes(cast(NatsClient, connection))

    first = server()
    assert first == {"server.address": "127.0.0.1", "server.port": 4333}
    assert server() is first
    connection.connected_url = urlparse("nats://10.0.0.2")
    assert server() == {"server.address": "10.0.0.2", "server.port": 4222}
    connection.connected_url = None
    assert server() == {}
