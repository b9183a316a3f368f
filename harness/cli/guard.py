"""Run a command's coroutine so that every way it can end is one line and an exit code.

SIGTERM and SIGINT cancel the coroutine instead of killing the process, so the `async with`
blocks that started servers stop them and the temporary folders are removed on the way out.
Failures a user can cause or fix (bad input, an unreachable server, a folder that cannot be
written) end with exit 2; a saga that got stuck with exit 1; a signal with 128 + its number.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

from harness.cli.console import fail
from shared.errors import InvalidOrder
from shared.servers import ServerError
from shared.store.errors import SchemaBehind
from shared.validation import InvalidInput

T = TypeVar("T")
SIGNALS = (signal.SIGTERM, signal.SIGINT)
_waiting: list[asyncio.Event] = []
"""Set by the next signal instead of cancelling the run (`until_signal`)."""


class Interrupted(Exception):
    """The run was stopped by a signal; everything it started has been stopped."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the failures a user can fix, and signals, into one stderr line and an exit code."""
    try:
        yield
    except (InvalidInput, InvalidOrder, ServerError, SchemaBehind, ConnectionError) as error:
        fail(str(error))
    except OSError as error:
        if error.filename is None:
            raise
        fail(f"cannot use {error.filename} ({error.strerror}); choose a writable folder")
    except Interrupted as stop:
        interrupted(stop.signum)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run the coroutine to its end; a SIGTERM or SIGINT cancels it and raises Interrupted."""
    return asyncio.run(_cancel_on_signal(coroutine))


def interrupted(signum: int) -> NoReturn:
    """Say which signal stopped the run, then exit with 128 + its number (the shell's way)."""
    name = signal.Signals(signum).name
    fail(f"stopped by {name}; servers stopped and temporary files removed", code=128 + signum)


async def _cancel_on_signal(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await the coroutine; the first SIGTERM or SIGINT cancels it, later ones are ignored."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        if _waiting:
            _waiting.pop().set()  # a page left open for a person: the signal ends the wait
            return
        if not received:
            task.cancel()
        received.append(signum)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        result = await coroutine
    except BaseException:
        if received:  # whatever the cancellation turned into on its way out
            raise Interrupted(received[0]) from None
        raise
    finally:
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)
            if received:  # the process is on its way out: let the clean-up finish
                signal.signal(signum, signal.SIG_IGN)
    if received:
        raise Interrupted(received[0])
    return result


async def until_signal() -> None:
    """Wait until SIGINT or SIGTERM, which then ends only this wait, not the run."""
    stop = asyncio.Event()
    _waiting.append(stop)
    try:
        await stop.wait()
    finally:
        if stop in _waiting:
            _waiting.remove(stop)
