"""Setting up a durable survives a slow cluster: a timed-out create is asked again."""

from __future__ import annotations

from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeout

from choreography.bus import CONSUMER_SETUP_ATTEMPTS, Bus, ConsumerSpec


class SlowJetStream:
    """Answers ``add_consumer`` only after ``timeouts`` requests went unanswered."""

    def __init__(self, timeouts: int) -> None:
        self.timeouts = timeouts
        self.requests: list[str] = []

    async def add_consumer(self, stream: str, config: Any = None, **_: Any) -> object:
        self.requests.append(config.durable_name)
        if len(self.requests) <= self.timeouts:
            raise NatsTimeout
        return object()


def bus_over(js: SlowJetStream) -> Bus:
    bus = Bus.__new__(Bus)  # no connection: only the JetStream API is exercised
    bus.js = js  # type: ignore[assignment]
    return bus


SPEC = ConsumerSpec(durable="inventory", service="inventory", filter_subjects=("saga.x",))


async def test_a_create_that_timed_out_is_asked_again_and_succeeds() -> None:
    # Under load (an R3 cluster on a busy machine) the meta leader answered after the
    # client's 10 s request timeout; the create is idempotent, so it is safe to ask again.
    js = SlowJetStream(timeouts=CONSUMER_SETUP_ATTEMPTS - 1)

    await bus_over(js).ensure_consumer(SPEC)

    assert js.requests == ["inventory"] * CONSUMER_SETUP_ATTEMPTS


async def test_a_cluster_that_never_answers_still_fails() -> None:
    js = SlowJetStream(timeouts=CONSUMER_SETUP_ATTEMPTS)

    with pytest.raises(NatsTimeout):
        await bus_over(js).ensure_consumer(SPEC)
    assert len(js.requests) == CONSUMER_SETUP_ATTEMPTS
