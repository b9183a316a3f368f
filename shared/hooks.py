"""Hooks: the middleware a process's composition root plugs into the two seams, if any.

A process runs with no hooks unless its settings name a factory (``SAGA_HOOKS=module:function``,
called with the variant's name): the step seam (`shared/steps.py`, around every step and fence)
and the publish seam (the choreography's outbox relay). What the hooks do is the factory's
business; production deployments name none, so nothing of it is even imported there.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from shared.steps import Middleware


class PublishMiddleware(Protocol):
    """Wraps a batch publish of one store's outbox (``source``: the store's name):
    ``(source, batch, publish) -> the messages published now``; the rest stay unsent, for the
    relay's next poll."""

    async def __call__(
        self,
        source: str,
        batch: Sequence[Any],
        publish: Callable[[Sequence[Any]], Awaitable[None]],
    ) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Hooks:
    step: tuple[Middleware, ...] = ()
    publish: tuple[PublishMiddleware, ...] = ()


NO_HOOKS = Hooks()


def load_hooks(path: str, variant: str) -> Hooks:
    """The hooks the factory at ``module:function`` builds for ``variant``; none for ``""``."""
    if not path:
        return NO_HOOKS
    module_name, _, function = path.partition(":")
    factory = getattr(importlib.import_module(module_name), function)
    hooks = factory(variant)
    if not isinstance(hooks, Hooks):
        raise TypeError(f"{path} returned {type(hooks).__name__}, not Hooks")
    return hooks
