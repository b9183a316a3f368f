"""What a benchmark's sagas order (many customers in turn, each with points for all of theirs),
and what it keeps of each ended saga for the invariants."""

from __future__ import annotations

from collections import Counter
from typing import cast

from harness.bench.workload import CUSTOMERS, Ended, SagaDriver, bench_order, bench_seed
from harness.compare.invariants import Settled, check_invariants, check_settled
from harness.compare.namespace import Namespace
from shared.contracts import (
    BusinessState,
    Charge,
    OrderRecord,
    Phase,
    Reason,
    SagaOutcome,
    SagaStatus,
    Shipment,
    StepId,
    StepName,
    StepState,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.runtime import SagaRuntime


def test_bench_orders_come_from_many_customers_in_turn() -> None:
    orders = [bench_order(f"b{i}", i) for i in range(3 * CUSTOMERS)]

    per_customer = Counter(order.customer_id for order in orders)
    assert len(per_customer) == CUSTOMERS
    assert set(per_customer.values()) == {3}
    assert orders[0].customer_id != orders[1].customer_id


def test_the_bench_seed_gives_every_customer_the_points_and_stock_of_all_their_orders() -> None:
    sagas = 250  # not a multiple of the customers: some have one order more
    seed = bench_seed(sagas)
    orders = [bench_order(f"b{i}", i) for i in range(sagas)]

    used = Counter[str]()
    for order in orders:
        used[order.customer_id] += order.points_to_use
    assert all(seed.points[name] >= points for name, points in used.items())
    widgets = sum(line.quantity for order in orders for line in order.items)
    assert seed.products["widget"].stock >= widgets


PLAN = ORDERS_V1.spec
TAG = "0badcafe"


def saga_outcome(
    index: int,
    status: SagaStatus,
    forward: dict[StepId, StepStatus],
    undone: tuple[StepId, ...] = (),
    reason: Reason | None = None,
) -> SagaOutcome:
    steps = [StepState(step=s, phase=Phase.FORWARD, status=v) for s, v in forward.items()]
    steps += [StepState(step=s, phase=Phase.COMPENSATE, status=DONE) for s in undone]
    return SagaOutcome(
        saga_id=f"b{index}-{TAG}", order_id=f"b{index}", status=status, reason=reason, steps=steps
    )


DONE = StepStatus.DONE
COMPLETED = dict.fromkeys(PLAN.forward_steps, DONE)
OUTCOMES = [
    saga_outcome(0, SagaStatus.COMPLETED, COMPLETED),
    saga_outcome(
        1,
        SagaStatus.COMPENSATED,
        {StepName.RESERVE_INVENTORY: DONE, StepName.CHARGE_PAYMENT: StepStatus.FAILED},
        (StepName.RELEASE_INVENTORY,),
        Reason.PAYMENT_DECLINED,
    ),
    saga_outcome(  # a refund that never succeeded: only the charge remains
        2,
        SagaStatus.NEEDS_INTERVENTION,
        {
            **COMPLETED,
            StepName.CREATE_SHIPMENT: StepStatus.FAILED,
            StepName.COMPLETE_ORDER: StepStatus.PENDING,
        },
        (StepName.RESTORE_POINTS, StepName.RELEASE_INVENTORY),
        Reason.SHIPMENT_FAILED,
    ),
    saga_outcome(3, SagaStatus.COMPLETED, COMPLETED),
]


def test_what_the_bench_keeps_of_an_ended_saga_reads_back_as_the_invariants_read_it() -> None:
    ended = Ended(PLAN)
    for index in (2, 0, 3, 1):  # sagas end out of order
        ended.add(index, SagaDriver.order(index), OUTCOMES[index])

    kept = list(ended.settled(SagaDriver.order))

    assert kept == [Settled.of(SagaDriver.order(i), OUTCOMES[i], PLAN) for i in (2, 0, 3, 1)]
    assert [s.effects.remains for s in kept][:2] == [
        frozenset({StepName.CHARGE_PAYMENT}),
        frozenset(PLAN.forward_steps),
    ]


class Domain:
    definition = ORDERS_V1

    def __init__(self, state: BusinessState) -> None:
        self.state = state

    async def snapshot(self) -> BusinessState:
        return self.state


class Runtime:
    def __init__(self, state: BusinessState) -> None:
        self.domain = Domain(state)


def completed_state(sagas: int) -> BusinessState:
    """What ``sagas`` completed bench orders leave in the run's namespace (a deployment's ids)."""
    ns, seed = Namespace(TAG), bench_seed(sagas)
    orders = [SagaDriver.order(i) for i in range(sagas)]
    points = dict(seed.points)
    for order in orders:
        points[order.customer_id] -= order.points_to_use
    return BusinessState(
        stock={ns.id("widget"): seed.products["widget"].stock - sagas},
        reserved={ns.id(o.order_id): {ns.id("widget"): 1} for o in orders},
        charges=[
            Charge(
                saga_id=ns.id(o.order_id),
                customer_id=ns.id(o.customer_id),
                amount_cents=o.total_cents,
                refunded_cents=0,
            )
            for o in orders
        ],
        points={ns.id(c): n for c, n in points.items()},
        shipments=[
            Shipment(saga_id=ns.id(o.order_id), order_id=ns.id(o.order_id), status="created")
            for o in orders
        ],
        orders=[
            OrderRecord(
                saga_id=ns.id(o.order_id),
                order_id=ns.id(o.order_id),
                total_cents=o.total_cents,
                status=SagaStatus.COMPLETED,
            )
            for o in orders
        ],
    )


def driver_over(state: BusinessState, sagas: int) -> SagaDriver:
    driver = SagaDriver(cast(SagaRuntime, Runtime(state)), TAG, 1.0)
    driver.seed = bench_seed(sagas)  # what prepare() seeds, without a store
    for index in range(sagas):
        done = saga_outcome(index, SagaStatus.COMPLETED, COMPLETED)
        driver.ended.add(index, driver.order(index), done)
    return driver


async def test_the_bench_finds_every_invariant_held_over_a_run_that_kept_them() -> None:
    assert await driver_over(completed_state(5), 5).invariants() is True


async def test_the_bench_still_reports_a_shipment_lost_by_one_completed_saga() -> None:
    whole = completed_state(5)
    lost = whole.model_copy(update={"shipments": whole.shipments[1:]})

    assert await driver_over(lost, 5).invariants() is False


async def test_the_bench_still_reports_a_saga_charged_twice() -> None:
    whole = completed_state(5)
    twice = whole.model_copy(update={"charges": [*whole.charges, whole.charges[3]]})

    assert await driver_over(twice, 5).invariants() is False


def test_the_kept_records_give_the_same_verdicts_as_the_whole_outcomes_on_a_broken_run() -> None:
    ns = Namespace(TAG)
    whole = completed_state(4)
    broken = ns.restrict(whole.model_copy(update={"stock": {ns.id("widget"): 1}}))
    pairs = [(SagaDriver.order(i), OUTCOMES[i]) for i in range(4)]
    ended = Ended(PLAN)
    for index, (order, outcome) in enumerate(pairs):
        ended.add(index, order, outcome)

    verdicts = check_settled(
        ORDERS_V1, bench_seed(4), broken, list(ended.settled(SagaDriver.order))
    )

    assert verdicts == check_invariants(ORDERS_V1, bench_seed(4), broken, pairs)
    assert verdicts["stock_conserved"] is False
