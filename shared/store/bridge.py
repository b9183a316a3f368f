"""Synchronous ``work(tx)`` over an asynchronous driver, on the event loop, with greenlets.

`call_sync` runs a plain function in a greenlet of its own; whenever the function needs the
driver it calls `wait(coroutine)`, which switches back to the coroutine that called
`call_sync`: that one awaits the driver on the loop and switches into the function again with
the answer (or the exception). The function reads as blocking code; the loop keeps running
other tasks while it waits. It is the technique SQLAlchemy's asyncio layer uses to run its
synchronous ORM over asyncpg or psycopg's async connections; here it lets services keep their
``work(tx)`` functions while the Postgres adapter needs no threads.

The greenlet shares its caller's context variables (the current span, say).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from greenlet import getcurrent, greenlet

T = TypeVar("T")


class _Bridged(greenlet):
    """The greenlet a synchronous function runs in; its parent awaits on its behalf."""

    def __init__(self, fn: Callable[..., Any], parent: greenlet) -> None:
        super().__init__(fn, parent)
        self.gr_context = parent.gr_context


async def call_sync(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)``, awaiting on its behalf every awaitable it hands to `wait`."""
    child = _Bridged(fn, getcurrent())
    handed = child.switch(*args)
    while not child.dead:
        try:
            answer = await handed
        except BaseException as error:  # the driver's error (or a cancel) raises inside ``fn``
            handed = child.throw(error)
        else:
            handed = child.switch(answer)
    return cast(T, handed)


def wait(awaitable: Awaitable[T]) -> T:
    """From inside a function run by `call_sync`: the result of ``awaitable``, awaited on the
    loop while this function is suspended."""
    current = getcurrent()
    if not isinstance(current, _Bridged) or current.parent is None:
        raise RuntimeError("wait() outside call_sync(): the driver needs the event loop")
    return cast(T, current.parent.switch(awaitable))
