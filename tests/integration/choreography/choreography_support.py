"""Orders, policies and stream look-ups shared by the choreography integration tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from choreography.broker import SAGA_STREAM
from choreography.runtime import ChoreographyRuntime, ChoreographySettings
from shared.contracts import LineItem, OrderRequest, SagaPolicy, ShippingAddress

Settings = Callable[..., ChoreographySettings]
"""The ``settings`` fixture: quick settings on the module's broker, own durables."""

HOME = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="US")
ANTARCTICA = ShippingAddress(name="B", street="1 Ice", city="Y", postal_code="0", country="AQ")
PRICES = {"widget": 1_999, "gadget": 4_950, "last-few": 2_500, "sold-out": 999}

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


def make_order(
    order_id: str,
    *,
    customer: str = "alice",
    items: dict[str, int] | None = None,
    points: int = 0,
    card: str = "card-4242",
    address: ShippingAddress = HOME,
) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        customer_id=customer,
        items=[
            LineItem(product_id=p, quantity=q, unit_price_cents=PRICES[p])
            for p, q in (items or {"widget": 2}).items()
        ],
        payment_method=card,
        points_to_use=points,
        shipping_address=address,
    )


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
