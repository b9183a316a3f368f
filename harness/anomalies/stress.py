"""Stress mode: seeded random interleavings over a small catalogue, anomalies per 10,000 sagas.

Sagas run in batches of `BATCH`, each batch in a namespace of its own (a fresh catalogue and
point accounts), all of a batch started at once so they collide: two products, two customers
with a few deductions' worth of points, some cards declined, some shipments undeliverable,
some customers cancelling while a step of theirs is held to commit late, the shop repricing a
product once in the middle of the batch. Holds add a seeded random delay before one or two
steps of each saga (`Hold.delay_ms`), so the interleavings differ from saga to saga and replay
exactly. The mix depends on the seed only: every style and setting runs the same sagas.

Each batch is judged like a deterministic cell — the checker over its history, the invariants
over the state it left — and the two must agree. A cell's figures: anomalies found per 10,000
sagas by each, the batches where they disagree, sagas stuck, latency (start to settled, p50
and p95) and throughput.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from harness.anomalies import scenarios as sc
from harness.anomalies.checker import check
from harness.anomalies.history import Entry
from harness.anomalies.invariants import Settled, violations
from harness.anomalies.kinds import Anomaly, Finding
from harness.anomalies.lab import LabRuntime, caught_up
from harness.anomalies.seams import entered, late
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.runner import new_run_tag
from harness.compare.scenarios import ANTARCTICA, HOME
from shared.contracts import LineItem, OrderRequest, SagaOutcome, SagaPolicy, StepName
from shared.errors import InvalidOrder
from shared.faults import FaultPlan, Hold, released
from shared.seed import Product, SeedData

BATCH = 20
"""Sagas started together in one namespace."""
SEED = SeedData(
    products={
        "widget": Product(name="Widget", price_cents=1_999, stock=100_000),
        "gadget": Product(name="Gadget", price_cents=4_950, stock=100_000),
    },
    points={"alice": 300, "bob": 300},
)
"""Ample stock (a refusal for stock is not one of the five), points for three deductions."""
POLICY = SagaPolicy(
    deadline_s=120.0,
    attempt_timeout_s=2.0,
    initial_backoff_s=0.02,
    backoff_factor=2.0,
    max_backoff_s=0.2,
    compensation_attempts=6,
)
REPRICE_CENTS = 500
"""What the shop adds to the widget's price once per batch."""
STEPS = (
    StepName.RESERVE_INVENTORY,
    StepName.CHARGE_PAYMENT,
    StepName.DEDUCT_POINTS,
    StepName.CREATE_SHIPMENT,
)
LATE = (StepName.RESERVE_INVENTORY, StepName.CREATE_SHIPMENT)
"""The steps a cancelled saga holds to commit late (the leak and the lost cancel)."""


@dataclass(frozen=True)
class Mixed:
    """One saga of the mix: its order (before pricing), holds, and whether it is cancelled."""

    index: int
    customer: str
    product: str
    quantity: int
    points: int
    declined: bool
    undeliverable: bool
    jitter: tuple[tuple[str, int], ...]
    late_step: str | None

    def order(self, order_id: str, price_cents: int) -> OrderRequest:
        return OrderRequest(
            order_id=order_id,
            customer_id=self.customer,
            items=[
                LineItem(
                    product_id=self.product, quantity=self.quantity, unit_price_cents=price_cents
                )
            ],
            payment_method=sc.DECLINED if self.declined else sc.CARD,
            points_to_use=self.points,
            shipping_address=ANTARCTICA if self.undeliverable else HOME,
        )


def mix(seed: int, batch: int, size: int = BATCH) -> list[Mixed]:
    """The batch's sagas, from the seed alone."""
    rng = random.Random(f"anomaly-stress:{seed}:{batch}")
    sagas = []
    for index in range(size):
        jitter = tuple((step, rng.randint(0, 40)) for step in rng.sample(STEPS, rng.choice((1, 2))))
        sagas.append(
            Mixed(
                index=index,
                customer=rng.choice(("alice", "bob")),
                product=rng.choice(("widget", "gadget")),
                quantity=rng.randint(1, 3),
                points=rng.choice((0, 0, 100, 100, 100)),
                declined=rng.random() < 0.15,
                undeliverable=rng.random() < 0.15,
                jitter=jitter,
                late_step=rng.choice(LATE) if rng.random() < 0.1 else None,
            )
        )
    return sagas


class StressCell(BaseModel):
    """One style and setting under the mix."""

    model_config = ConfigDict(frozen=True)

    variant: str
    setting: str
    countermeasures: str
    definition: str
    sagas: int
    stuck: int
    refused_at_admission: int
    by_history: dict[Anomaly, int]
    by_invariants: dict[Anomaly, int]
    disagreements: int
    """Batches where the checker and the invariants found different anomalies (counted by
    kind)."""
    outcomes: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    throughput_per_s: float
    seconds: float
    examples: dict[Anomaly, list[str]]
    """A few findings of each anomaly, for the report."""

    def per_10k(self, anomaly: Anomaly) -> float:
        settled = max(1, self.sagas - self.stuck)
        return round(self.by_history.get(anomaly, 0) * 10_000 / settled, 1)


@dataclass
class Tally:
    """What a cell has counted so far."""

    latencies: list[float] = field(default_factory=list)
    by_history: Counter[Anomaly] = field(default_factory=Counter)
    by_invariants: Counter[Anomaly] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    examples: dict[Anomaly, list[str]] = field(default_factory=dict)
    disagreements: int = 0
    stuck: int = 0
    refused: int = 0
    sagas: int = 0
    seconds: float = 0.0
    """Time spent running this cell's batches (its turns, when cells take turns)."""

    def cell(self, variant: str, setting: sc.Setting) -> StressCell:
        ordered = sorted(self.latencies)
        return StressCell(
            variant=variant,
            setting=setting.name,
            countermeasures=setting.countermeasures.text,
            definition=setting.definition,
            sagas=self.sagas,
            stuck=self.stuck,
            refused_at_admission=self.refused,
            by_history=dict(self.by_history),
            by_invariants=dict(self.by_invariants),
            disagreements=self.disagreements,
            outcomes=dict(sorted(self.outcomes.items())),
            p50_ms=_percentile(ordered, 0.50),
            p95_ms=_percentile(ordered, 0.95),
            throughput_per_s=round(self.sagas / self.seconds, 2) if self.seconds else 0.0,
            seconds=round(self.seconds, 2),
            examples=self.examples,
        )

    def judge(self, by_history: list[Finding], by_invariants: list[Finding]) -> None:
        self.by_history.update(f.anomaly for f in by_history)
        self.by_invariants.update(f.anomaly for f in by_invariants)
        for finding in by_history:
            kept = self.examples.setdefault(finding.anomaly, [])
            if len(kept) < 3:
                kept.append(finding.note)
        # Per batch, how many of each kind: the invariants cannot always tell which sagas a
        # lost update of stock involves (only the product), the history can.
        if Counter(f.anomaly for f in by_history) != Counter(f.anomaly for f in by_invariants):
            self.disagreements += 1


async def stress_cell(
    lab: LabRuntime, setting: sc.Setting, sagas: int, seed: int, timeout_s: float = 120.0
) -> StressCell:
    """``sagas`` sagas of the seed's mix on one style and setting, batch by batch."""
    tally = Tally()
    await run_batches(lab, tally, 0, sagas, seed, timeout_s)
    return tally.cell(lab.variant, setting)


async def run_batches(
    lab: LabRuntime, tally: Tally, first: int, sagas: int, seed: int, timeout_s: float = 120.0
) -> None:
    """The mix's sagas from batch ``first`` on, ``sagas`` of them, counted into ``tally``."""
    began = time.perf_counter()
    for n in range((sagas + BATCH - 1) // BATCH):
        size = min(BATCH, sagas - n * BATCH)
        await _batch(lab, mix(seed, first + n, size), tally, timeout_s)
    tally.seconds += time.perf_counter() - began


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 1)


@dataclass
class Batch:
    """One batch under way: its namespace, its go signal, the shop's price, what settled."""

    lab: LabRuntime
    namespace: Namespace
    price: dict[str, int]
    settled: dict[str, Settled] = field(default_factory=dict)
    started: int = 0

    @property
    def go(self) -> str:
        return released(f"go-{self.namespace.tag}")


async def _batch(lab: LabRuntime, sagas: list[Mixed], tally: Tally, timeout_s: float) -> None:
    namespace = Namespace(new_run_tag())
    await seed_namespace(lab.runtime.domain, namespace, SEED)
    batch = Batch(lab, namespace, {p: SEED.products[p].price_cents for p in SEED.products})
    lab.history.entries.clear()
    lab.recorder.committed.clear()
    half = len(sagas) // 2
    runs = [asyncio.ensure_future(_one(batch, saga, tally, timeout_s)) for saga in sagas]
    try:
        await _until_started(batch, half, timeout_s)
        await _reprice(batch)
        lab.signals.give(batch.go)
        await asyncio.gather(*runs)
    finally:
        for run in runs:
            run.cancel()
    ids = list(batch.settled)
    try:
        await lab.witness.until_quiet(ids, timeout_s)
        await _views(lab, ids, timeout_s)
    except TimeoutError:
        tally.stuck += len(ids)
        return
    state = namespace.restrict(await lab.runtime.domain.snapshot())
    entries: list[Entry] = lab.history.of(ids, keys_with=namespace.tag)
    spec = lab.runtime.domain.saga
    tally.judge(check(entries, spec), violations(SEED, state, list(batch.settled.values()), spec))


async def _until_started(batch: Batch, count: int, timeout_s: float) -> None:
    """Until ``count`` sagas of the batch were admitted (the shop reprices in the middle)."""
    async with asyncio.timeout(timeout_s):
        while batch.started < count:
            await asyncio.sleep(0.005)


async def _reprice(batch: Batch) -> None:
    product = "widget"
    batch.price[product] += REPRICE_CENTS
    name = batch.namespace.id(product)
    await batch.lab.runtime.domain.inventory.reprice(name, batch.price[product])
    batch.lab.history.repriced(name, batch.price[product])


async def _one(batch: Batch, saga: Mixed, tally: Tally, timeout_s: float) -> None:
    lab, namespace = batch.lab, batch.namespace
    order_id = f"s{saga.index}"
    saga_id = namespace.saga_id(order_id)
    holds = [
        Hold(step=s, until=batch.go, delay_ms=ms, timeout_s=timeout_s) for s, ms in saga.jitter
    ]
    if saga.late_step is not None:
        holds.append(Hold(step=saga.late_step, until=late(saga_id, saga.late_step), timeout_s=30))
    began = time.perf_counter()
    placed = await _admitted(batch, saga, order_id, saga_id, FaultPlan(holds=holds))
    tally.sagas += 1
    batch.started += 1
    if placed is None:
        tally.refused += 1
        return
    cancel = None
    if saga.late_step is not None:
        cancel = asyncio.ensure_future(_cancel(lab, saga_id, saga.late_step, timeout_s))
    try:
        outcome = await lab.runtime.wait(saga_id, timeout_s)
    except Exception:
        tally.stuck += 1
        return
    finally:
        if cancel is not None:
            cancel.cancel()
    tally.latencies.append((time.perf_counter() - began) * 1000)
    lab.history.ended(outcome)
    if saga.late_step is not None:
        lab.signals.give(late(saga_id, saga.late_step))
    tally.outcomes[_label(outcome)] += 1
    plain = saga.order(order_id, placed.items[0].unit_price_cents)
    batch.settled[saga_id] = Settled(saga_id, plain, namespace.outcome(outcome))


async def _admitted(
    batch: Batch, saga: Mixed, order_id: str, saga_id: str, plan: FaultPlan
) -> OrderRequest | None:
    """Start the saga at the shop's current price; once more if the shop repriced meanwhile."""
    for _ in range(2):
        placed = batch.namespace.order(saga.order(order_id, batch.price[saga.product]))
        asked = time.time()
        try:
            await batch.lab.driven.start_saga(saga_id, placed, plan, POLICY)
        except InvalidOrder:
            continue
        batch.lab.history.started(saga_id, placed, asked)
        return placed
    return None


async def _cancel(lab: LabRuntime, saga_id: str, step: str, timeout_s: float) -> None:
    if await lab.signals.wait(entered(saga_id, step), timeout_s):
        await lab.runtime.cancel_saga(saga_id)


async def _views(lab: LabRuntime, ids: list[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(ids)
    while pending:
        views = [await lab.runtime.describe(saga_id) for saga_id in pending]
        pending = [v.saga_id for v in views if not caught_up(v, lab.recorder.committed)]
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} sagas' views did not settle")
        if pending:
            await asyncio.sleep(0.05)


def _label(outcome: SagaOutcome) -> str:
    reason = f" ({outcome.reason})" if outcome.reason else ""
    return f"{outcome.status.value}{reason}"
