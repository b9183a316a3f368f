"""One nats-server per test module; a fresh runtime (own data folder and durables) per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio

from choreography.broker import NatsBroker, NatsSettings
from choreography.runtime import ChoreographyRuntime, ChoreographySettings, open_runtime
from harness.compare.faulty import Faulty, injected
from shared.definitions import ORDERS_V1
from shared.seed import seed
from tests.integration.choreography.choreography_support import Settings


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def broker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[NatsBroker]:
    async with NatsBroker(state_dir=tmp_path_factory.mktemp("nats")) as started:
        yield started


@pytest.fixture
def settings(broker: NatsBroker) -> Settings:
    """Settings on the module's broker with durables of their own and quick redelivery."""

    def make(**changes: object) -> ChoreographySettings:
        base = ChoreographySettings(
            nats=NatsSettings(url=broker.url),
            consumer_suffix=f"-{uuid.uuid4().hex[:8]}",
            ack_wait_s=1.0,
        )
        return replace(base, **changes)  # type: ignore[arg-type]

    return make


@pytest_asyncio.fixture(loop_scope="module")
async def runtime(settings: Settings, tmp_path: Path) -> AsyncIterator[Faulty[ChoreographyRuntime]]:
    """A seeded runtime running every process kind here, with a fault injector whose plans
    ``start_saga`` installs (the raw runtime is ``.runtime``)."""
    plans, hooks = injected("choreography")
    async with open_runtime(
        tmp_path / "data", ORDERS_V1, settings=settings(), hooks=hooks
    ) as started:
        await seed(started.domain)
        yield Faulty(started, plans)
