"""How every adapter runs a transaction for its caller: one retry rule, and a started
transaction waited out when its caller is cancelled.

The retry rule, the same on every backend: a transaction that failed with `Conflict` (SQLite
busy or locked; Postgres serialization failure, deadlock, lock not available) or with
`StoreUnavailable` before its commit (a dropped connection) was rolled back by the database,
so ``work`` runs again from the start — up to ``attempts`` times in all (5), after a random
pause of up to 10 ms, 20 ms, 40 ms ... (rivals that collided do not collide again in step).
Anything else — an error of ``work`` itself, a constraint, bad SQL, `CommitUnknown` — reaches
the caller at once. Each retry is logged (logger ``shared.store``, INFO).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shared.store.errors import CommitUnknown, Conflict, StoreError, StoreUnavailable

T = TypeVar("T")

log = logging.getLogger("shared.store")


@dataclass(frozen=True)
class RetryRule:
    """What is run again, how often, and how long to pause in between."""

    attempts: int = 5
    """Runs of ``work`` in all, the first included."""
    first_pause_s: float = 0.01
    """Upper bound of the first pause; it doubles after every failed attempt."""

    def retries(self, error: BaseException) -> bool:
        """Whether ``error`` says the database rolled the transaction back, nothing kept."""
        if isinstance(error, CommitUnknown):
            return False
        return isinstance(error, Conflict | StoreUnavailable)

    def pause_s(self, attempt: int) -> float:
        """A random pause after failed attempt number ``attempt`` (1, 2 ...)."""
        return random.uniform(0, self.first_pause_s * 2 ** (attempt - 1))


RETRY = RetryRule()


async def retrying(
    rule: RetryRule, name: str, attempt: Callable[[], Awaitable[T]], *, failed: int = 0
) -> T:
    """Await ``attempt()`` until it succeeds or fails in a way `rule` does not retry.

    ``failed`` counts attempts the caller already made (the SQLite store's try on the loop).
    A cancel during a pause is harmless: no transaction is open then.
    """
    number = failed
    while True:
        number += 1
        try:
            return await attempt()
        except StoreError as error:
            if number >= rule.attempts or not rule.retries(error):
                raise
            pause = rule.pause_s(number)
            log.info(
                "store %s: %s [%s]; running the transaction again in %.0f ms (attempt %d of %d)",
                name, error, error.code, pause * 1000, number + 1, rule.attempts,
            )  # fmt: skip
        await asyncio.sleep(pause)


async def settle(future: asyncio.Future[T]) -> T:
    """Await a transaction to its end despite cancellation, then re-raise a cancel received.

    The transaction runs in a thread or a task of its own; waiting for it keeps "the task was
    cancelled" from meaning "the transaction may still be running" (or half done).
    """
    cancelled = False
    while not future.done():
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            cancelled = True
        except BaseException:
            break  # done with this exception: ``future.result()`` raises it below
    if cancelled:
        raise asyncio.CancelledError
    return future.result()
