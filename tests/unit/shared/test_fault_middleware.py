"""The fault injector at its two seams: holds between sagas, held reports, tombstones, signals.

Steps run through `shared.steps.run_step` over a real domain (SQLite files) with the injector
as the only middleware, as both variants run them; nothing here waits on a timer to decide an
order: each hold is released by a signal the test gives or another saga's step gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_asyncio

from harness.compare.scenarios import order
from shared import faults
from shared.contracts import StepName, StepRequest, StepStatus
from shared.definitions import ORDERS_V1
from shared.errors import StepRejected, TransientFailure
from shared.faults import (
    DirectoryPlans,
    DirectorySignals,
    FaultInjector,
    FaultPlan,
    FaultRule,
    Hold,
    MemoryPlans,
    reached,
    released,
)
from shared.faults.injector import the_pivot
from shared.hooks import Hooks
from shared.seed import seed
from shared.services import Domain
from shared.steps import Invocation, Proceed, run_fence, run_step
from shared.store import sqlite_stores

R, C = StepName.RESERVE_INVENTORY, StepName.CHARGE_PAYMENT
T = TypeVar("T")


@pytest_asyncio.fixture
async def domain(tmp_path: Path) -> AsyncIterator[Domain]:
    opened = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
    await seed(opened)
    yield opened
    await opened.close()


@dataclass
class World:
    domain: Domain
    plans: MemoryPlans
    injector: FaultInjector
    hooks: Hooks

    async def step(self, saga_id: str, step: str, attempt: int = 1) -> StepStatus:
        request = StepRequest(saga_id=saga_id, order=order(saga_id), attempt=attempt)
        result = await run_step(
            self.domain, step, request, variant="test", middleware=self.hooks.step
        )
        return result.status


@pytest.fixture
def world(domain: Domain) -> World:
    plans = MemoryPlans()
    injector = FaultInjector(plans, report_waits_for=the_pivot)
    return World(domain, plans, injector, faults.hooks(injector))


class Committed:
    """A middleware inside the injector: the order in which steps committed."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str]] = []

    async def __call__(self, invocation: Invocation, proceed: Proceed[T]) -> T:
        result = await proceed()
        self.order.append((invocation.saga_id, invocation.step))
        return result


async def test_a_hold_makes_one_saga_wait_until_another_reached_a_step(world: World) -> None:
    committed = Committed()
    world.hooks = Hooks(step=(*world.hooks.step, committed))
    hold = Hold(step=C, at="before", until=reached("b", C, "after"))
    world.plans.install("a", FaultPlan(holds=[hold]))

    async def saga(saga_id: str) -> None:
        await world.step(saga_id, R)
        await world.step(saga_id, C)

    ahead = asyncio.ensure_future(saga("a"))
    await world.injector.signals.wait(reached("a", R, "after"), 5)  # a is first, at C now
    await saga("b")
    await ahead

    charges = [saga_id for saga_id, step in committed.order if step == C]
    assert charges == ["b", "a"]


async def test_a_hold_that_waits_past_its_timeout_fails_the_attempt_for_a_retry(
    world: World,
) -> None:
    hold = Hold(step=C, until=released("never"), timeout_s=0.05)
    world.plans.install("parked", FaultPlan(holds=[hold]))

    with pytest.raises(TransientFailure, match="held at charge_payment until release/never"):
        await world.step("parked", C)

    world.injector.signals.give(released("never"))
    assert await world.step("parked", C, attempt=2) is StepStatus.DONE


async def test_a_tombstoned_step_meets_no_fault_so_a_hung_attempt_is_not_hung_again(
    world: World,
) -> None:
    world.plans.install("fenced", FaultPlan(rules=[FaultRule(step=C, hang=True)]))
    await run_fence(world.domain, "fenced", C, variant="test", middleware=world.hooks.step)

    with pytest.raises(StepRejected):
        await world.step("fenced", C, attempt=2)


async def test_a_report_held_until_the_cancel_waits_for_the_fence_of_the_pivot(
    world: World,
) -> None:
    rule = FaultRule(step=C, delay_after_ms=60_000, until_cancelled=True)
    world.plans.install("late", FaultPlan(rules=[rule]))
    reporting = asyncio.ensure_future(world.step("late", C))
    await world.injector.signals.wait(reached("late", C, "after"), 5)
    assert not reporting.done()

    await run_fence(
        world.domain, "late", ORDERS_V1.spec.pivot, variant="test", middleware=world.hooks.step
    )

    assert await reporting is StepStatus.DONE


@dataclass(frozen=True)
class Message:
    msg_id: str
    saga_id: str


class Broker:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.event = asyncio.Event()

    async def publish(self, batch: Sequence[Message]) -> None:
        self.published += [m.msg_id for m in batch]
        self.event.set()


async def test_a_held_report_keeps_only_that_services_messages_of_the_saga_unpublished(
    world: World,
) -> None:
    hold = Hold(step=C, at="after", until=released("report"))
    world.plans.install("s", FaultPlan(holds=[hold]))
    (publish,) = world.hooks.publish
    broker = Broker()
    step = asyncio.ensure_future(world.step("s", C))
    await world.injector.signals.wait(reached("s", C, "after"), 5)
    batch = [Message("s:payment.charged", "s"), Message("t:payment.charged", "t")]

    published_now = await publish("payment", batch, broker.publish)
    from_orders = await publish("orders", [Message("s:order.cancel_requested", "s")], _to(broker))

    assert [m.msg_id for m in published_now] == ["t:payment.charged"]
    assert [m.msg_id for m in from_orders] == ["s:order.cancel_requested"]
    world.injector.signals.give(released("report"))
    assert await step is StepStatus.DONE
    await _until(lambda: "s:payment.charged" in broker.published)
    assert broker.published == [
        "t:payment.charged",
        "s:order.cancel_requested",
        "s:payment.charged",
    ]


def _to(broker: Broker) -> Callable[[Sequence[Message]], Awaitable[None]]:
    return broker.publish


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():
            await asyncio.sleep(0.01)


async def test_plans_and_fences_cross_processes_through_the_deployments_folder(
    tmp_path: Path,
) -> None:
    """Two injectors over one folder stand for two processes of a chaos deployment."""
    writer = DirectoryPlans(tmp_path / "plans")
    writer.install("d", FaultPlan(rules=[FaultRule(step=C, transient=1)]))
    here = DirectorySignals(tmp_path / "signals")
    there = DirectorySignals(tmp_path / "signals")

    assert DirectoryPlans(tmp_path / "plans").plan("d") == writer.plan("d")
    assert DirectoryPlans(tmp_path / "plans").plan("unplanned") is None
    waiting = asyncio.ensure_future(there.wait(reached("d", C, "fenced"), 5))
    here.give(reached("d", C, "fenced"))
    assert await waiting
    assert not there.given(reached("d", C, "after"))  # only fences and releases cross
