"""`saga-compare chaos`: kill and restart process kinds under load, the same for both styles.

The run, on a deployment from ``up`` (or one started for the run and stopped after it):

1. draw the seeded orders and, unless told not to, run them fault-free on each variant at a
   bounded concurrency: their outcomes are the reference, their throughput the capacity;
2. choose the rate: ``--rate``, or half the lower capacity measured (below either style's
   saturation knee: overload is not recovery), and draw the kill schedule over the
   submission window;
3. per variant, the same orders at that rate and the same kills at the same moments with
   the same downtimes (``target_of`` says which process a kind is in each style);
4. wait (bounded) for every saga, then report per variant (harness/chaos/analysis.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from choreography.runtime import ChoreographyRuntime
from harness.chaos.analysis import EventAudit, VariantReport, analyse, label
from harness.chaos.drive import VariantRun, fault_free, fire
from harness.chaos.events import audit_stream, not_audited
from harness.chaos.plan import (
    EXPECTED,
    ChaosOrder,
    Kill,
    chaos_seed,
    draw_kills,
    draw_orders,
    target_of,
)
from harness.compare.namespace import Namespace
from harness.compare.runner import new_run_tag
from harness.deploy import ledger
from harness.deploy.attach import open_front_door
from harness.deploy.topology import Topology
from shared.definitions import definition_named
from shared.faults.deployment import PLANS
from shared.faults.sources import DirectoryPlans, PlanBoard
from shared.runtime import SagaRuntime
from shared.seed import SeedData
from shared.settings import StoreKind
from shared.telemetry import Tracing
from shared.validation import InvalidInput

RATE_SHARE = 0.5
"""The default rate is this share of the lower measured capacity."""
MIN_RATE = 0.2


@dataclass(frozen=True)
class ChaosOptions:
    variants: list[str]
    orders: int
    kinds: list[str]
    seed: int
    rate: float | None = None
    downtime: tuple[float, float] = (2.0, 4.0)
    bound_s: float = 120.0
    baseline: bool = True
    concurrency: int = 16


class ScheduledKill(BaseModel):
    model_config = ConfigDict(frozen=True)

    at_s: float
    kind: str
    down_s: float
    targets: dict[str, str | None]
    """The process the kill hits in each variant (None: the variant has no such process)."""


class ChaosDocument(BaseModel):
    """Everything ``chaos.json`` holds."""

    model_config = ConfigDict(frozen=True)

    seed: int
    orders: int
    kinds: list[str]
    store: str
    rate: float
    rate_reason: str
    capacity: dict[str, float]
    reference: str
    schedule: list[ScheduledKill]
    variants: list[VariantReport]
    started_at: float
    state_dir: str

    @property
    def failures(self) -> dict[str, list[str]]:
        return {r.variant: r.failures for r in self.variants if r.failures}


Progress = Callable[[str], None]


def check_kinds(kinds: list[str], found: Topology) -> None:
    """Every kind must be a process of this deployment (Postgres only on a Postgres store)."""
    for kind in kinds:
        if kind == "postgres" and found.store is not StoreKind.POSTGRES:
            raise InvalidInput(
                "--kill postgres: this deployment keeps its stores in SQLite files; "
                "start one on Postgres with `saga-compare up --store postgres`"
            )


async def run_chaos(
    options: ChaosOptions, found: Topology, tracing: Tracing, progress: Progress
) -> ChaosDocument:
    check_kinds(options.kinds, found)
    if found.faults_dir is None:
        raise InvalidInput(
            f"the deployment in {found.state_dir} runs no fault injector, and a chaos run's "
            "orders hold crash points; start it with `saga-compare up --chaos` (or run "
            "`saga-compare chaos` without --attach: it starts one of its own)"
        )
    plans = DirectoryPlans(found.faults_dir / PLANS)
    definition = definition_named(found.definition)
    orders = draw_orders(options.seed, options.orders)
    seed = chaos_seed(options.orders)
    started = time.time()
    async with AsyncExitStack() as stack:
        runtimes: dict[str, SagaRuntime] = {}
        for variant in options.variants:
            runtimes[variant] = await stack.enter_async_context(
                open_front_door(variant, found.settings(variant), tracing, definition)
            )
        reference, capacity = await _reference(
            options, runtimes, plans, orders, seed, found, progress
        )
        rate, reason = _rate(options, capacity)
        kills = draw_kills(options.seed, options.kinds, options.orders / rate, options.downtime)
        reports = []
        for variant, runtime in runtimes.items():
            progress(f"{variant}: {options.orders} orders at {rate:g}/s under fire ...")
            run = await _under_fire(runtime, plans, orders, kills, rate, seed, found, options)
            events = await _events(runtime, run)
            reports.append(analyse(run, reference[variant], seed, events, definition))
    return ChaosDocument(
        seed=options.seed,
        orders=options.orders,
        kinds=options.kinds,
        store=found.store.value,
        rate=rate,
        rate_reason=reason,
        capacity=capacity,
        reference="a fault-free run of the same orders"
        if options.baseline
        else "each order's expected outcome by kind (no fault-free run)",
        schedule=[
            ScheduledKill(
                at_s=k.at_s,
                kind=k.kind,
                down_s=k.down_s,
                targets={v: target_of(k.kind, v) for v in options.variants},
            )
            for k in kills
        ],
        variants=reports,
        started_at=started,
        state_dir=str(found.state_dir),
    )


async def _reference(
    options: ChaosOptions,
    runtimes: dict[str, SagaRuntime],
    plans: PlanBoard,
    orders: list[ChaosOrder],
    seed: SeedData,
    found: Topology,
    progress: Progress,
) -> tuple[dict[str, dict[int, str]], dict[str, float]]:
    """Each variant's reference outcomes by order index, and its measured capacity (sagas/s)."""
    if not options.baseline:
        expected = {o.index: _label(*EXPECTED[o.kind]) for o in orders}
        return {v: expected for v in runtimes}, {}
    reference, capacity = {}, {}
    for variant, runtime in runtimes.items():
        progress(
            f"{variant}: {options.orders} orders fault-free, {options.concurrency} at once ..."
        )
        namespace = Namespace(new_run_tag())
        _record(found, namespace, "chaos reference", [variant], seed, orders)
        run = await fault_free(
            runtime,
            plans,
            orders,
            concurrency=options.concurrency,
            namespace=namespace,
            seed=seed,
            bound_s=options.bound_s + options.orders,
        )
        reference[variant] = {s.order.index: label(s.outcome) for s in run.sagas}
        capacity[variant] = round(len(run.sagas) / max(run.finished_at - run.started_at, 1e-3), 2)
    return reference, capacity


def _label(status: object, reason: object) -> str:
    return f"{status}/{reason}" if reason else str(status)


def _rate(options: ChaosOptions, capacity: dict[str, float]) -> tuple[float, str]:
    measured = ", ".join(f"{v} {c:g}/s" for v, c in capacity.items())
    if options.rate is not None:
        if capacity and options.rate > min(capacity.values()):
            return options.rate, (
                f"given by --rate; above the lower capacity measured ({measured}): overload "
                "will show as timeouts that no kill caused"
            )
        return options.rate, "given by --rate" + (
            f" (capacity measured: {measured})" if measured else ""
        )
    if not capacity:
        raise InvalidInput(
            "pass --rate when no fault-free run measures the capacity (--no-baseline)"
        )
    rate = max(MIN_RATE, round(RATE_SHARE * min(capacity.values()), 1))
    return rate, (
        f"half the lower capacity measured fault-free at {options.concurrency} in flight "
        f"({measured}): below both styles' saturation knee, so recovery is not mistaken "
        "for overload"
    )


async def _under_fire(
    runtime: SagaRuntime,
    plans: PlanBoard,
    orders: list[ChaosOrder],
    kills: list[Kill],
    rate: float,
    seed: SeedData,
    found: Topology,
    options: ChaosOptions,
) -> VariantRun:
    namespace = Namespace(new_run_tag())
    _record(found, namespace, "chaos under fire", [runtime.variant], seed, orders)
    targets = [(k, t) for k in kills if (t := target_of(k.kind, runtime.variant)) is not None]
    return await fire(
        runtime,
        plans,
        orders,
        targets,
        rate=rate,
        namespace=namespace,
        seed=seed,
        supervisor=found.control,
        bound_s=options.bound_s,
    )


async def _events(runtime: SagaRuntime, run: VariantRun) -> EventAudit:
    if isinstance(runtime, ChoreographyRuntime):
        return await audit_stream(runtime.bus.js, run)
    return not_audited()


def _record(
    found: Topology,
    namespace: Namespace,
    what: str,
    variants: list[str],
    seed: SeedData,
    orders: list[ChaosOrder],
) -> None:
    entry = ledger.Entry(
        tag=namespace.tag,
        what=what,
        variants=variants,
        seed=seed,
        orders=[o.case.order for o in orders],
        definition=found.definition,
    )
    ledger.record(found.state_dir, entry)
