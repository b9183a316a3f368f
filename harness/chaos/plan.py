"""A chaos run's plan: the seeded mix of orders, the kill schedule, and what a kill hits.

Everything here is drawn from one seed, so a run replays exactly and both variants get the
same orders, the same kill moments and the same downtimes. The mix is mostly happy orders,
with business failures (declined card, too few points, an undeliverable address, a sold-out
product), transient faults (failed attempts, delays) and crash points — a charge, or a refund
during compensation, that kills its process right after committing (a chaos run's deployment
is started with ``up --chaos``, whose fault injector turns a crash point into a real death).
Stock and points are ample, so without kills every order's outcome is fixed by its kind.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from harness.compare.scenarios import ANTARCTICA, SagaCase, order
from shared.contracts import Reason, SagaPolicy, SagaStatus, StepName
from shared.faults import CrashPoint, FaultPlan, FaultRule
from shared.seed import Product, SeedData
from shared.validation import InvalidInput

CHOREOGRAPHY_KINDS = ("inventory", "payment", "points", "shipping", "orders", "tracker")
ENGINE = {"choreography": "nats", "orchestration": "temporal"}
KINDS = (*CHOREOGRAPHY_KINDS, "worker", "nats", "temporal", "postgres")
NOT_A_PROCESS = {
    "relay": "the outbox relay is a task inside each service process, not a process of its "
    "own; kill the service (inventory, payment, points, shipping, orders) instead",
}

POLICY = SagaPolicy(
    deadline_s=120.0,
    attempt_timeout_s=2.0,
    initial_backoff_s=0.1,
    backoff_factor=2.0,
    max_backoff_s=1.0,
    compensation_attempts=10,
)
"""The same timings for both: a deadline well past any downtime, a generous retry budget."""

MIX: tuple[tuple[str, float], ...] = (
    ("happy", 0.50),
    ("no_points", 0.08),
    ("transient", 0.12),
    ("delayed", 0.06),
    ("declined", 0.06),
    ("insufficient_points", 0.05),
    ("undeliverable", 0.05),
    ("out_of_stock", 0.04),
    ("crash_after_charge", 0.02),
    ("crash_during_refund", 0.02),
)
"""Kinds of order and their share of the mix."""

EXPECTED: dict[str, tuple[SagaStatus, Reason | None]] = {
    "happy": (SagaStatus.COMPLETED, None),
    "no_points": (SagaStatus.COMPLETED, None),
    "transient": (SagaStatus.COMPLETED, None),
    "delayed": (SagaStatus.COMPLETED, None),
    "crash_after_charge": (SagaStatus.COMPLETED, None),
    "declined": (SagaStatus.COMPENSATED, Reason.PAYMENT_DECLINED),
    "insufficient_points": (SagaStatus.COMPENSATED, Reason.INSUFFICIENT_POINTS),
    "undeliverable": (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED),
    "crash_during_refund": (SagaStatus.COMPENSATED, Reason.SHIPMENT_FAILED),
    "out_of_stock": (SagaStatus.COMPENSATED, Reason.OUT_OF_STOCK),
}
"""What each kind ends in without kills (the reference when no fault-free run is made)."""


@dataclass(frozen=True)
class ChaosOrder:
    """One order of the mix: its kind, the saga case, and its place in the submission order."""

    index: int
    kind: str
    case: SagaCase

    @property
    def expected(self) -> tuple[SagaStatus, Reason | None]:
        return EXPECTED[self.kind]

    def calm(self) -> ChaosOrder:
        """The same order without its crash point: what the fault-free reference runs (a
        crash point never changes an outcome, only kills a process)."""
        faults = self.case.faults
        rules = [rule for rule in faults.rules if rule.crash is None]
        if len(rules) == len(faults.rules):
            return self
        case = SagaCase(self.case.order, faults.model_copy(update={"rules": rules}))
        return ChaosOrder(self.index, self.kind, case)


@dataclass(frozen=True)
class Kill:
    """One kill of the schedule: when (seconds after the run starts), what, for how long."""

    at_s: float
    kind: str
    down_s: float


def chaos_seed(orders: int) -> SeedData:
    """Enough of everything that no order runs out by accident."""
    return SeedData(
        products={
            "widget": Product(name="Widget", price_cents=1_999, stock=orders * 4 + 10),
            "gadget": Product(name="Gadget", price_cents=4_950, stock=orders * 2 + 10),
            "sold-out": Product(name="Sold-out item", price_cents=999, stock=0),
        },
        points={"alice": orders * 200 + 1_000, "bob": 100},
    )


def draw_orders(seed: int, count: int) -> list[ChaosOrder]:
    """The seeded mix: ``count`` orders, each of a kind drawn by its share."""
    rng = random.Random(f"orders:{seed}")
    kinds = [kind for kind, _ in MIX]
    weights = [share for _, share in MIX]
    return [
        ChaosOrder(i, kind, _case(kind, f"chaos-{i:05d}", rng))
        for i, kind in enumerate(rng.choices(kinds, weights, k=count))
    ]


def _case(kind: str, order_id: str, rng: random.Random) -> SagaCase:
    items = {"widget": rng.randint(1, 3)} if rng.random() < 0.7 else {"widget": 1, "gadget": 1}
    points = rng.choice((0, 50, 100))
    if kind == "no_points":
        return SagaCase(order(order_id, customer="bob", items=items))
    if kind == "declined":
        return SagaCase(order(order_id, items=items, card="card-0002", points=points))
    if kind == "insufficient_points":
        return SagaCase(order(order_id, customer="bob", items=items, points=500))
    if kind == "undeliverable":
        return SagaCase(order(order_id, items=items, points=points, address=ANTARCTICA))
    if kind == "out_of_stock":
        return SagaCase(order(order_id, items={"widget": 1, "sold-out": 1}))
    if kind == "crash_during_refund":
        # The compensation is interrupted: its process dies right after the refund committed.
        rule = FaultRule(step=StepName.REFUND_PAYMENT, crash=CrashPoint.AFTER_COMMIT)
        placed = order(order_id, items=items, points=points, address=ANTARCTICA)
        return SagaCase(placed, FaultPlan(rules=[rule]))
    return SagaCase(order(order_id, items=items, points=points), _faults(kind, rng))


def _faults(kind: str, rng: random.Random) -> FaultPlan:
    if kind == "transient":
        step = rng.choice((StepName.RESERVE_INVENTORY, StepName.CHARGE_PAYMENT))
        return FaultPlan(rules=[FaultRule(step=step, transient=rng.randint(1, 2))])
    if kind == "delayed":
        step = rng.choice((StepName.CHARGE_PAYMENT, StepName.CREATE_SHIPMENT))
        return FaultPlan(rules=[FaultRule(step=step, delay_ms=rng.randint(50, 400))])
    if kind == "crash_after_charge":
        return FaultPlan(
            rules=[FaultRule(step=StepName.CHARGE_PAYMENT, crash=CrashPoint.AFTER_COMMIT)]
        )
    return FaultPlan()


def draw_kills(
    seed: int, kinds: list[str], window_s: float, downtime: tuple[float, float]
) -> list[Kill]:
    """One kill per kind, at a seeded moment in the middle of the submission window."""
    rng = random.Random(f"kills:{seed}")
    low, high = downtime
    kills = [
        Kill(round(rng.uniform(0.15, 0.65) * window_s, 2), kind, round(rng.uniform(low, high), 2))
        for kind in kinds
    ]
    return sorted(kills, key=lambda kill: kill.at_s)


def target_of(kind: str, variant: str) -> str | None:
    """The process a kill of ``kind`` hits in ``variant``, or None where there is none.

    A service's code runs in the worker in the orchestration, so a service kill hits the
    worker there; each variant's engine (nats, temporal) exists only in that variant;
    Postgres holds both variants' stores.
    """
    if kind == "postgres":
        return kind
    if variant == "choreography":
        return kind if kind in (*CHOREOGRAPHY_KINDS, "nats") else None
    if kind in (*CHOREOGRAPHY_KINDS, "worker"):
        return "worker"
    return kind if kind == "temporal" else None


def parse_kinds(text: str) -> list[str]:
    """``payment,worker,nats`` as a list; one line naming the kinds when one is unknown."""
    kinds = [part.strip() for part in text.split(",") if part.strip()]
    if not kinds:
        raise InvalidInput(f"--kill names no kind; choose from {', '.join(KINDS)}")
    for kind in kinds:
        if kind in NOT_A_PROCESS:
            raise InvalidInput(f"--kill {kind}: {NOT_A_PROCESS[kind]}")
        if kind not in KINDS:
            raise InvalidInput(f"--kill {kind}: unknown kind; choose from {', '.join(KINDS)}")
    return kinds
