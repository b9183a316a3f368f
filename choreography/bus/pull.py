"""The pull consumer: nats-py's own `PullSubscription.fetch` on the durable, as a loop takes it.

What the JetStream pull protocol answers besides messages, and who deals with it (nats-py
2.16's ``fetch``, then `Puller.take`):

- ``100`` idle heartbeat: skipped by nats-py. We ask for none: nats-py does not end a fetch
  whose heartbeats stop, and a heartbeat on the lingering request it sends after an early
  status is refused once the time left is under two heartbeats (``400 heartbeat value too
  large``), losing that fetch's messages to a redelivery.
- ``404`` no messages, ``408`` request timeout: a request ended. After messages, nats-py
  returns them; an idle request's ``408`` comes at its expiry and nats-py raises
  ``nats.errors.TimeoutError``. Either way the loop asks again at once.
- ``409`` (consumer deleted, leadership change, exceeded limits): nats-py counts it with
  404 and 408 as "temporary" and keeps waiting until the fetch's timeout before it ends the
  fetch empty (so does an early 404 / 408). The caller never sees it: the rest of the timeout
  is the pause before the next request, and the timeout bounds it. A deleted durable answers
  the next request with ``503``.
- anything else (``400`` bad request, ``503`` no responders: the durable or JetStream is gone):
  nats-py raises `APIError` at once; logged, then fetched again after `FetchPolicy.pause_s`,
  as after a connection error.

Batch size follows what waits on the server (each message's ``num_pending``). While nothing
waits the loop asks for **one** message: nats-py's ``fetch(1)`` returns the moment it comes,
and a late ``408`` of an earlier request cannot end it. When a message says more wait, the
loop asks for those (up to its room) at once, so a backlog that built up while the consumer
was paused or stopped is fetched, and dispatched, together: a cancel in it still overtakes
its saga's lane. An idle ``fetch(n)`` is avoided: when the late ``408`` of its predecessor
arrives first, nats-py follows it with a lingering request that waits for ``n`` messages, and
the fetch can then hold a message for up to its whole timeout (measured: docs/choreography.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.errors import APIError

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 2.0
WAITING_TIMEOUT_S = 0.25
PAUSE_S = 0.2


@dataclass(frozen=True)
class FetchPolicy:
    """How long one fetch may wait, and the pause after a refused one."""

    timeout_s: float = FETCH_TIMEOUT_S
    """An idle consumer's request lasts this long. It also bounds the wait after a request the
    server dropped (a ``409``, a reconnect), so it is short; one request per period is cheap."""
    waiting_timeout_s: float = WAITING_TIMEOUT_S
    """A fetch of what a message said waits is answered at once; should another consumer of
    the durable have taken it, nats-py lingers for the rest of the timeout: keep it short."""
    pause_s: float = PAUSE_S
    """After a refused fetch or a connection error, before asking again."""


class Puller:
    """One durable's pull subscription (nats-py's), fetched one message at a time while
    nothing waits on the server, and what waits once something does."""

    def __init__(
        self, sub: JetStreamContext.PullSubscription, durable: str, policy: FetchPolicy
    ) -> None:
        self._sub = sub
        self._durable = durable
        self._policy = policy
        self._waiting = 0
        self._refused = False

    async def take(self, room: int) -> list[Msg]:
        """Up to ``room`` messages, waiting for the next one when none waits (or the fetch's
        timeout); none after an empty or refused fetch."""
        if self._waiting:
            return await self._batch(min(room, self._waiting), self._policy.waiting_timeout_s)
        taken = await self._batch(1, self._policy.timeout_s)
        if taken and self._waiting and room > 1:  # and what waited behind it
            more = min(room - 1, self._waiting)
            taken += await self._batch(more, self._policy.waiting_timeout_s)
        return taken

    async def close(self) -> None:
        with contextlib.suppress(NatsError):
            await self._sub.unsubscribe()

    async def _batch(self, size: int, timeout_s: float) -> list[Msg]:
        msgs = await self._fetch(size, timeout_s)
        self._waiting = msgs[-1].metadata.num_pending if msgs else 0
        return msgs

    async def _fetch(self, batch: int, timeout_s: float) -> list[Msg]:
        try:
            msgs = await self._sub.fetch(batch, timeout=timeout_s)
        except TimeoutError:  # 404, 408, and a 409 nats-py waited out: an empty fetch
            msgs = []
        except APIError as refused:
            self._log_refusal(refused)
            await asyncio.sleep(self._policy.pause_s)
            return []
        except NatsError as error:  # the connection is closed or reconnecting
            log.debug("pull %s: %r", self._durable, error)
            await asyncio.sleep(self._policy.pause_s)
            return []
        self._refused = False
        return msgs

    def _log_refusal(self, refused: APIError) -> None:
        """A warning on the first refusal of a streak, the rest at debug (it may last)."""
        level = logging.DEBUG if self._refused else logging.WARNING
        self._refused = True
        log.log(level, "pull from %s refused (%s); asking again", self._durable, refused)
