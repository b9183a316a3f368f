"""The JetStream adapter: one connection, publishing with stream acks, durables, pauses.

The only place that opens a NATS connection for the variant's processes. Publishing is
pipelined: every message of a batch goes out before any ack is awaited, and each message's
``send`` span, whose context the message carries, ends with its own ack (tracing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import ConnectionClosedError, UnexpectedEOF
from nats.errors import Error as NatsError
from nats.js import JetStreamContext

from choreography.broker import SAGA_STREAM, NatsLogin
from choreography.bus import tracing
from choreography.bus.messages import Outgoing
from choreography.bus.spec import ConsumerSpec

log = logging.getLogger(__name__)

CONSUMER_SETUP_ATTEMPTS = 3
"""Requests to create or update a durable before giving up. Creating one is idempotent, and on a
busy machine an R3 cluster's meta leader was seen answering after the client's 10 s timeout."""
PUBLISH_TIMEOUT_S = 10.0
FIRST_CONNECT_ATTEMPTS = 3


class Bus:
    """One NATS connection and its JetStream context."""

    def __init__(self, nc: NatsClient, js: JetStreamContext) -> None:
        self.nc = nc
        self.js = js
        self._server = tracing.ServerAttributes(nc)

    @classmethod
    async def connect(
        cls, servers: Sequence[str], name: str, login: NatsLogin | None = None
    ) -> Bus:
        """Connect (as ``login``'s user), reconnecting forever once connected; a first failure
        is a ConnectionError (a refused login too: its message says so)."""
        try:
            nc = await nats.connect(
                servers=list(servers),
                name=name,
                max_reconnect_attempts=FIRST_CONNECT_ATTEMPTS,
                reconnect_time_wait=0.5,
                connect_timeout=5,
                error_cb=_quiet,
                **(login.connect_options() if login is not None else {}),
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

        Each message gets its PRODUCER ``send`` span, carried in its headers to its consumers,
        ended when its own ack (or error) is in.
        """
        server = self._server()
        spans = [tracing.send_span(item, server) for item in batch]
        try:
            futures = [
                await self.js.publish_async(
                    item.subject, item.body, headers=tracing.published_headers(item, span)
                )
                for item, span in zip(batch, spans, strict=True)
            ]
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                acks = await asyncio.gather(*futures, return_exceptions=True)
        except BaseException as error:
            tracing.end_all(spans, error)
            raise
        for span, ack in zip(spans, acks, strict=True):
            tracing.end_send(span, ack)
        failures = [ack for ack in acks if isinstance(ack, BaseException)]
        if failures:
            raise failures[0]

    def server_attributes(self) -> Mapping[str, str | int]:
        """``server.address`` and ``server.port`` of the server this connection is on now."""
        return self._server()

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

    async def pull_subscription(self, spec: ConsumerSpec) -> JetStreamContext.PullSubscription:
        """nats-py's pull subscription bound to the durable `ensure_consumer` made.

        Bound, not ``pull_subscribe``: that one looks the durable up first and, were it gone,
        would create one with its own defaults (no filter, every message from the start).
        """
        return await self.js.pull_subscribe_bind(durable=spec.durable, stream=spec.stream)

    async def pause(self, durable: str, seconds: float) -> None:
        """Pause a consumer server-side (a clean outage of one service)."""
        until = datetime.fromtimestamp(time.time() + seconds, UTC)
        await self.js.pause_consumer(SAGA_STREAM, durable, until.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


async def _quiet(error: Exception) -> None:
    """nats-py logs each error with a traceback; a lost connection (it reconnects) is routine.
    A permissions violation (a publish the server refused for this user) is a warning."""
    routine = isinstance(error, (OSError, UnexpectedEOF, ConnectionClosedError))
    log.log(logging.DEBUG if routine else logging.WARNING, "nats: %r", error)
