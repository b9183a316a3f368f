"""The batch consumer: whole fetched batches, in stream order, through one handler.

The tracker's projection folds a batch in one transaction; the handler names the deliveries
that are poison (dead-lettered), the rest are acked. A batch whose handler fails is nakked
whole, to be folded again (folding is idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from nats.aio.msg import Msg

from choreography.bus.consumer import Consumer
from choreography.bus.messages import BatchHandler, Poison, Retry, delivery_of

log = logging.getLogger(__name__)


@dataclass
class BatchConsumer(Consumer):
    """Whole batches in stream order through one handler (the tracker's projection)."""

    batch_handler: BatchHandler | None = None
    retry_s: float = 0.5

    async def _dispatch(self, msgs: list[Msg]) -> None:
        assert self.batch_handler is not None
        deliveries = [delivery_of(msg) for msg in msgs]
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
