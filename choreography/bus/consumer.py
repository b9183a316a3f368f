"""The loop every consumer runs: fetch, hand over, keep in-progress, settle each message.

A handler that returns acks; ``Retry`` naks with its delay (a plain nak redelivers at once);
``Poison`` or exhausted deliveries dead-letter the message. How a fetched batch reaches the
handlers is the subclass's: per-saga lanes (`lanes.py`) or whole batches (`batches.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError

from choreography.bus import dead_letters
from choreography.bus.jetstream import Bus
from choreography.bus.messages import Poison, Retry
from choreography.bus.pull import Puller
from choreography.bus.spec import ConsumerSpec

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    msg: Msg
    handled: bool = False


@dataclass
class Consumer(ABC):
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
        """Create or update the durable, bind nats-py's pull subscription to it, and loop."""
        await self.bus.ensure_consumer(self.spec)
        sub = await self.bus.pull_subscription(self.spec)
        self._puller = Puller(sub, self.spec.durable, self.spec.fetch)
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
            msgs = await self._puller.take(min(room, self.spec.batch))
            if self._closed:
                return  # fetched after a stop: left unacked, the server redelivers them
            for msg in msgs:
                self._pending[id(msg)] = _Pending(msg)
            if msgs:
                await self._dispatch(msgs)

    @abstractmethod
    async def _dispatch(self, msgs: list[Msg]) -> None:
        """Hand a fetched batch to the handler: per-saga lanes or the whole batch in order."""

    async def _heartbeat(self) -> None:
        """Tell the server every fetched message is still being worked on (queued ones too),
        each tick: refreshes of a message are never more than a tick apart plus the loop's
        lateness, so a loop late by up to two thirds of the ack wait keeps its messages
        (refreshing only those a whole tick old let a message wait almost two ticks)."""
        period = self.spec.ack_wait_s / 3
        while not self._closed:
            await asyncio.sleep(period)
            for pending in list(self._pending.values()):
                if not pending.handled:
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
        await dead_letters.bury(self.bus.js, msg, self.spec.service, reason)
        return "term"
