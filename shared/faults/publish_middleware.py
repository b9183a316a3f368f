"""The fault injector at the publish seam: a held report's messages wait in the outbox.

A step that holds its report after the commit (a delay after it, a hold) has its events
committed in its outbox already; the choreography's relay must not publish them before the
step reports. This middleware wraps the relay's publish: messages of a saga whose reports are
held — by the held step's service, from that service's store — are left unpublished (the
relay leaves them unsent, and finds them again on a later poll), and published as soon as the
hold ends. The saga's other messages (a cancel, another service's answer) go out as usual.
Publishing one twice is harmless: the broker drops the duplicate by its message id.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, Protocol, TypeVar

from shared.faults.injector import FaultInjector


class Addressed(Protocol):
    """A message that says which saga it belongs to and is deduplicated by its id."""

    @property
    def msg_id(self) -> str: ...

    @property
    def saga_id(self) -> str: ...


M = TypeVar("M", bound=Addressed)
Publish = Callable[[Sequence[M]], Awaitable[None]]


class PublishHolds(Generic[M]):
    """The relay's publish middleware: ``(batch, publish) -> what was published now``."""

    def __init__(self, injector: FaultInjector) -> None:
        self.injector = injector
        self._waiting: dict[str, asyncio.Task[None]] = {}

    async def __call__(self, source: str, batch: Sequence[M], publish: Publish[M]) -> Sequence[M]:
        held = [m for m in batch if self.injector.reports_held(m.saga_id, source)]
        if not held:
            await publish(batch)
            return batch
        now = [m for m in batch if not self.injector.reports_held(m.saga_id, source)]
        if now:
            await publish(now)
        for message in held:
            if message.msg_id not in self._waiting:
                task = asyncio.ensure_future(self._after_release(source, message, publish))
                self._waiting[message.msg_id] = task
        return now

    async def _after_release(self, source: str, message: M, publish: Publish[M]) -> None:
        try:
            await self.injector.until_reports_released(message.saga_id, source)
            with contextlib.suppress(Exception):  # unsent, it is found by the relay's next poll
                await publish([message])
        finally:
            self._waiting.pop(message.msg_id, None)
