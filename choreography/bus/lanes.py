"""The lane dispatcher: one saga's messages in order, different sagas side by side.

Each fetched message joins the lane of its key (the subject's last token, the saga id): a
lane runs its messages one after the other, so one hanging saga stalls only itself. A message
whose key is None (a cancel) runs at once beside its saga's lane: it overtakes the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field

from nats.aio.msg import Msg

from choreography.bus import tracing
from choreography.bus.consumer import Consumer
from choreography.bus.messages import Handler, LaneKey, Poison, Retry, delivery_of

log = logging.getLogger(__name__)


def saga_lane(subject: str) -> str | None:
    """The default lane: the subject's last token, the saga id."""
    return subject.rsplit(".", 1)[-1]


@dataclass
class LaneConsumer(Consumer):
    """Per-message handling; one saga's messages in order, different sagas concurrently."""

    handler: Handler | None = None
    lane_key: LaneKey = saga_lane
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
        delivery = delivery_of(msg)
        server = self.bus.server_attributes()
        with tracing.process_span(delivery, self.spec.durable, server) as span:
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
            tracing.settled(span, answer, outcome)
