"""A durable pull consumer: its JetStream configuration and how the loop drives it."""

from __future__ import annotations

from dataclasses import dataclass, field

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from choreography.broker import SAGA_STREAM
from choreography.bus.pull import FetchPolicy


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
    """The most messages one fetch asks for while the consumer is busy."""
    max_inflight: int = 256
    stream: str = SAGA_STREAM
    """The stream the durable reads (the benchmark's floor runs the same loop on its own)."""
    fetch: FetchPolicy = field(default_factory=FetchPolicy)

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
