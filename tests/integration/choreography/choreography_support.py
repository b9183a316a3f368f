"""Orders, policies and stream look-ups shared by the choreography integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from choreography.broker import SAGA_STREAM
from choreography.runtime import ChoreographyRuntime, ChoreographySettings
from harness.compare.scenarios import order
from shared.contracts import SagaPolicy, ShippingAddress

Settings = Callable[..., ChoreographySettings]
"""The ``settings`` fixture: quick settings on the module's broker, own durables."""

HOME = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="US")
ANTARCTICA = ShippingAddress(name="B", street="1 Ice", city="Y", postal_code="0", country="AQ")

QUICK = SagaPolicy(
    deadline_s=10.0,
    attempt_timeout_s=1.0,
    initial_backoff_s=0.05,
    backoff_factor=2.0,
    max_backoff_s=0.2,
    compensation_attempts=3,
)


def saga_id(prefix: str = "saga") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


make_order = order
"""The catalogue's order builder: the same orders the contract suite runs."""


async def stream_count(
    runtime: ChoreographyRuntime, subject: str, stream: str = SAGA_STREAM
) -> int:
    """How many messages the stream holds on exactly this subject."""
    info = await runtime.bus.js.stream_info(stream, subjects_filter=subject)
    return int((info.state.subjects or {}).get(subject, 0))


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, timeout: float = 10.0, every: float = 0.02
) -> None:
    """Wait until probe() is true; fail with the probe's name after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"{getattr(probe, '__name__', 'condition')} not met in {timeout}s")
        await asyncio.sleep(every)
