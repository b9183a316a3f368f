"""What a benchmark runs: happy-path sagas on a runtime, or a variant's floors beside it.

Every driver offers ``one(i) -> bool`` (saga ``i`` ended as it should), so the closed and the
open load models drive sagas and floors alike. A saga driver keeps, of each saga that ended,
what the run's conservation invariants read afterwards, in a few bytes (`Ended`): the process
it runs in is the one the endurance runs measure, so its growth should be the system's.
"""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from harness.compare.faulty import Faulty, NoInjector
from harness.compare.invariants import Effects, Settled, check_settled
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.runner import run_saga
from harness.compare.scenarios import FAST, SagaCase, order
from shared.contracts import OrderRequest, ReasonId, SagaOutcome, SagaPolicy, SagaStatus
from shared.runtime import SagaRuntime
from shared.saga import SagaSpec
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
        self.ended = Ended(runtime.domain.definition.spec)

    async def prepare(self, sagas: int) -> None:
        """Seed a catalogue of the run's own that lets ``sagas`` orders complete (a
        deployment is never wiped: the ids carry the run's tag)."""
        self.seed = bench_seed(sagas)
        await seed_namespace(self.runtime.domain, self.namespace, self.seed)

    async def one(self, index: int) -> bool:
        case = SagaCase(self.order(index))
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
        self.ended.add(index, run.case.order, run.outcome)
        return run.outcome.status is SagaStatus.COMPLETED

    @staticmethod
    def order(index: int) -> OrderRequest:
        """Saga ``index``'s order: made again from its index when the invariants read it."""
        return bench_order(f"b{index}", index)

    def saga_id(self, index: int) -> str:
        return self.namespace.saga_id(self.order(index).order_id)

    async def invariants(self) -> bool:
        """Whether every conservation invariant held over the sagas that ended."""
        state = self.namespace.restrict(await self.runtime.domain.snapshot())
        sagas = list(self.ended.settled(self.order))
        definition = self.runtime.domain.definition
        return all(check_settled(definition, self.seed, state, sagas).values())


class Ended:
    """Of each ended saga, its index, final status and reason and which forward effects
    remain: all the invariants read besides the order, which is a function of the index.

    Flat arrays (plus the rare reason): a few bytes a saga and nothing the garbage collector
    tracks, where the whole `SagaRun` (order, outcome with its step states) cost 5 KiB.
    """

    def __init__(self, spec: SagaSpec) -> None:
        self.spec = spec
        self._steps = spec.forward_steps
        if len(self._steps) > 64:
            raise ValueError(f"the bench records at most 64 forward steps, not {len(self._steps)}")
        self._index = array("q")
        self._status = array("B")
        self._remains = array("Q")  # bit i: the effect of forward step i remains
        self._reasons: dict[int, ReasonId] = {}  # by position, only the sagas with one

    def add(self, index: int, order: OrderRequest, outcome: SagaOutcome) -> None:
        remains = Effects.of(order, outcome, self.spec).remains
        if outcome.reason is not None:
            self._reasons[len(self._index)] = outcome.reason
        self._index.append(index)
        self._status.append(STATUSES.index(outcome.status))
        self._remains.append(sum(1 << i for i, s in enumerate(self._steps) if s in remains))

    def __len__(self) -> int:
        return len(self._index)

    def indices(self) -> list[int]:
        return self._index.tolist()

    def settled(self, order_of: Callable[[int], OrderRequest]) -> Iterator[Settled]:
        """Each ended saga as the invariants read it, its order made by ``order_of``."""
        for at, index in enumerate(self._index):
            mask = self._remains[at]
            remains = frozenset(s for i, s in enumerate(self._steps) if mask >> i & 1)
            effects = Effects(order_of(index), remains)
            yield Settled(effects, STATUSES[self._status[at]], self._reasons.get(at))


STATUSES = tuple(SagaStatus)


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
