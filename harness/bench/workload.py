"""What a benchmark runs: happy-path sagas on a runtime, or a variant's floors beside it.

Every driver offers ``one(i) -> bool`` (saga ``i`` ended as it should), so the closed and the
open load models drive sagas and floors alike. A saga driver keeps each outcome so the run's
conservation invariants can be checked afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from harness.compare.faulty import Faulty, NoInjector
from harness.compare.invariants import check_invariants
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.runner import SagaRun, run_saga
from harness.compare.scenarios import FAST, SagaCase, order
from shared.contracts import OrderRequest, SagaPolicy, SagaStatus
from shared.runtime import SagaRuntime
from shared.seed import Product, SeedData
from shared.store.factory import VariantStores

SAGA = "saga"
FLOOR = "floor"
DURABLE_FLOOR = "durable floor"
KINDS = (FLOOR, DURABLE_FLOOR, SAGA)
LONG_DEADLINE_S = 300.0
"""The sagas' business deadline: long, so an overloaded run queues instead of compensating
(the benchmark's own deadline decides what counts as in time)."""


CUSTOMERS = 100
"""Benchmark orders come from this many customers in turn, as a shop's do: one customer's
every order would make each of them wait on the others' account row."""


def customer(index: int) -> str:
    return f"shopper-{index % CUSTOMERS}"


def bench_seed(sagas: int) -> SeedData:
    """Enough stock and points for every benchmark order to complete."""
    each = -(-max(sagas, 1) // CUSTOMERS) * 10  # ten times what a customer's orders use
    return SeedData(
        products={"widget": Product(name="Widget", price_cents=1_999, stock=max(sagas, 1) * 2)},
        points={customer(n): each for n in range(CUSTOMERS)},
    )


def bench_order(order_id: str, index: int = 0) -> OrderRequest:
    """A happy-path order that runs every forward step (one widget, one point), of the
    ``index``-th benchmark order's customer."""
    return order(order_id, customer=customer(index), items={"widget": 1}, points=1)


def bench_policy() -> SagaPolicy:
    return FAST.model_copy(update={"deadline_s": LONG_DEADLINE_S, "attempt_timeout_s": 30.0})


class Driver(Protocol):
    """Runs item ``i`` of a measured run to its end."""

    kind: str

    async def one(self, index: int) -> bool: ...


class SagaDriver:
    """Happy-path sagas through the harness's front door, each under its root span."""

    kind = SAGA

    def __init__(self, runtime: SagaRuntime, tag: str, timeout_s: float) -> None:
        self.runtime = runtime
        self.tag = tag
        self.timeout_s = timeout_s
        self.policy = bench_policy()
        self.namespace = Namespace(tag)
        self.runs: list[SagaRun] = []

    async def prepare(self, sagas: int) -> None:
        """Seed a catalogue of the run's own that lets ``sagas`` orders complete (a
        deployment is never wiped: the ids carry the run's tag)."""
        self.seed = bench_seed(sagas)
        await seed_namespace(self.runtime.domain, self.namespace, self.seed)

    async def one(self, index: int) -> bool:
        case = SagaCase(bench_order(f"b{index}", index))
        saga_id = self.namespace.saga_id(case.order.order_id)
        run = await run_saga(
            Faulty(self.runtime, NoInjector()),
            case,
            self.policy,
            saga_id,
            self.timeout_s,
            scenario="bench",
            namespace=self.namespace,
        )
        self.runs.append(run)
        return run.outcome.status is SagaStatus.COMPLETED

    async def invariants(self) -> bool:
        """Whether every conservation invariant held over the sagas that ended."""
        state = self.namespace.restrict(await self.runtime.domain.snapshot())
        sagas = [(run.case.order, run.outcome) for run in self.runs]
        definition = self.runtime.domain.definition
        return all(check_invariants(definition, self.seed, state, sagas).values())


class FloorDriver:
    """One floor chain per item: ``once(i)`` returns its latency, any failure raises."""

    def __init__(self, kind: str, once: Callable[[int], Awaitable[float]]) -> None:
        self.kind = kind
        self._once = once

    async def one(self, index: int) -> bool:
        await self._once(index)
        return True


@asynccontextmanager
async def open_floor(
    runtime: SagaRuntime, kind: str, stores: VariantStores | None
) -> AsyncIterator[FloorDriver]:
    """The variant's floor of this kind, running for the block."""
    if runtime.variant == "choreography":
        from harness.bench.floors.choreography import ChoreographyFloor

        durable = stores("floor") if kind == DURABLE_FLOOR and stores is not None else None
        url: str = _attr(runtime, "nats_url")
        async with ChoreographyFloor([url], durable) as chain:
            yield FloorDriver(kind, chain.once)
        return
    from harness.bench.floors.orchestration import OrchestrationFloor

    client, activities = _attr(runtime, "client"), _attr(runtime, "activities")
    floor = OrchestrationFloor(client, bench_order("floor"), bench_policy(), activities)
    async with floor as saga:
        yield FloorDriver(kind, saga.once)


def floor_kinds(variant: str, *, durable: bool = True) -> tuple[str, ...]:
    """The floors a variant is measured against (the choreography has a durable one too,
    unless there is no store of the harness's own to make it durable: an attached run)."""
    return (FLOOR, DURABLE_FLOOR) if variant == "choreography" and durable else (FLOOR,)


def _attr(runtime: SagaRuntime, name: str) -> Any:
    return getattr(runtime, name)
