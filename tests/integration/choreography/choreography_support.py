"""Orders, policies and stream look-ups shared by the choreography integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from choreography.broker import SAGA_STREAM
from choreography.events import Routing
from choreography.runtime import ChoreographyRuntime, ChoreographySettings, open_runtime
from harness.compare.faulty import Faulty, injected
from harness.compare.scenarios import order
from shared.contracts import SagaPolicy, ShippingAddress
from shared.definitions import ORDERS_V1

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


ROUTES = Routing(ORDERS_V1)
"""The order saga's routing: what each service's durable is filtered on."""


@asynccontextmanager
async def open_faulty(
    data_dir: Path, settings: ChoreographySettings, **options: Any
) -> AsyncIterator[Faulty[ChoreographyRuntime]]:
    """A runtime of the order saga with a fault injector whose plans ``start_saga`` installs."""
    plans, hooks = injected("choreography")
    async with open_runtime(data_dir, ORDERS_V1, settings=settings, hooks=hooks, **options) as rt:
        yield Faulty(rt, plans)


def saga_id(prefix: str = "saga") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


make_order = order
"""The catalogue's order builder: the same orders the contract suite runs."""


async def stream_count(
    runtime: ChoreographyRuntime | Faulty[ChoreographyRuntime],
    subject: str,
    stream: str = SAGA_STREAM,
) -> int:
    """How many messages the stream holds on exactly this subject."""
    raw = runtime.runtime if isinstance(runtime, Faulty) else runtime
    info = await raw.bus.js.stream_info(stream, subjects_filter=subject)
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
