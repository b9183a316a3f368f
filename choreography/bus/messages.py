"""What the bus carries: a message to publish, a delivery a handler sees, and its outcomes.

A handler returns (ack), raises `Retry` (nak with its delay) or `Poison` (dead-letter, then
term). Nothing here speaks NATS beyond reading a fetched message into a `Delivery`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg

SAGA_ID_HEADER = "Saga-Id"
MSG_ID_HEADER = "Nats-Msg-Id"


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


def delivery_of(msg: Msg) -> Delivery:
    """A fetched JetStream message as its handler sees it."""
    meta = msg.metadata
    return Delivery(
        subject=msg.subject,
        data=msg.data,
        headers=dict(msg.headers or {}),
        num_delivered=meta.num_delivered,
        stream_seq=meta.sequence.stream,
    )
