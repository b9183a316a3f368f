"""The shared services on real stores (every backend): idempotency, tombstones, races, faults."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Collection
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from shared import faults
from shared.catalogue import admit
from shared.contracts import (
    LineItem,
    OrderRequest,
    Reason,
    SagaStatus,
    ShippingAddress,
    StepName,
    StepRequest,
    StepResult,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.errors import (
    BusinessFailure,
    InvalidOrder,
    StepRejected,
    TransientFailure,
)
from shared.faults import CrashPoint, FaultInjector, FaultPlan, FaultRule, MemoryPlans
from shared.seed import DEFAULT_SEED, Product, SeedData, seed
from shared.services import Domain
from shared.services.points import LockWait
from shared.steps import run_step
from shared.store import StoreFactory, Tx, sqlite_stores

US = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="US")


SPEC = ORDERS_V1.spec


class Died(BaseException):
    """What an injected crash does in these tests: it ends the step where the process would."""


async def die() -> None:
    raise Died


async def faulty_step(
    domain: Domain, step: str, req: StepRequest, plan: FaultPlan, *, variant: str = "t"
) -> StepResult:
    """The step through the fault injector's middleware, with ``plan`` for its saga."""
    plans = MemoryPlans()
    plans.install(req.saga_id, plan)
    injector = FaultInjector.for_variant("orchestration", plans, die=die)
    return await run_step(
        domain, step, req, variant=variant, middleware=faults.hooks(injector).step
    )


def make_order(order_id: str = "o-1", **changes: Any) -> OrderRequest:
    fields: dict[str, object] = {
        "order_id": order_id,
        "customer_id": "alice",
        "items": [LineItem(product_id="widget", quantity=2, unit_price_cents=1999)],
        "payment_method": "card-4242",
        "points_to_use": 100,
        "shipping_address": US,
    }
    fields.update(changes)
    return OrderRequest.model_validate(fields)


def request(order: OrderRequest, attempt: int = 1) -> StepRequest:
    return StepRequest(saga_id=order.order_id, order=order, attempt=attempt)


@pytest.fixture
async def domain(store_factory: StoreFactory) -> AsyncIterator[Domain]:
    opened = await Domain(store_factory, ORDERS_V1).open()
    await seed(opened)
    yield opened
    await opened.close()


async def run_forward(domain: Domain, order: OrderRequest, upto: StepName) -> None:
    await domain.orders.place(order.order_id, order)
    for step in SPEC.forward_steps:
        await domain.handler(step)(request(order))
        if step is upto:
            return


def test_every_service_keeps_its_own_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    async def check() -> list[str]:
        domain = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
        modes = [
            (await service.store.query("PRAGMA journal_mode"))[0]["journal_mode"]
            for service in domain.services.values()
        ]
        await domain.close()
        return modes

    assert asyncio.run(check()) == ["wal"] * 5
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "inventory.db",
        "orders.db",
        "payment.db",
        "points.db",
        "shipping.db",
    ]


@pytest.mark.parametrize("step", SPEC.forward_steps, ids=str)
async def test_a_forward_step_applied_twice_has_the_effect_of_once(
    domain: Domain, step: StepName
) -> None:
    order = make_order()
    await run_forward(domain, order, step)
    once = await domain.snapshot()

    again = await domain.handler(step)(request(order, attempt=2))

    assert again.replayed and again.status is StepStatus.DONE
    assert await domain.snapshot() == once


@pytest.mark.parametrize("compensation", SPEC.compensations, ids=str)
async def test_a_compensation_applied_twice_has_the_effect_of_once(
    domain: Domain, compensation: StepName
) -> None:
    order = make_order()
    await run_forward(domain, order, StepName.CREATE_SHIPMENT)
    first = await domain.handler(compensation)(request(order))
    once = await domain.snapshot()

    again = await domain.handler(compensation)(request(order, attempt=2))

    assert first.status is StepStatus.DONE
    assert again.replayed and again.status is StepStatus.DONE
    assert await domain.snapshot() == once


async def test_compensations_restore_stock_money_and_points(domain: Domain) -> None:
    before = await domain.snapshot()
    order = make_order()
    await run_forward(domain, order, StepName.CREATE_SHIPMENT)

    for compensation in reversed(SPEC.compensations):
        await domain.handler(compensation)(request(order))

    after = await domain.snapshot()
    assert after.stock == before.stock
    assert after.points == before.points
    assert after.reserved == {}
    assert [(c.amount_cents, c.refunded_cents) for c in after.charges] == [(3998, 3998)]
    assert [s.status for s in after.shipments] == ["cancelled"]


@pytest.mark.parametrize("compensation", SPEC.compensations, ids=str)
async def test_compensation_before_forward_leaves_a_tombstone_that_rejects_the_late_step(
    domain: Domain, compensation: StepName
) -> None:
    order = make_order()
    await domain.orders.place(order.order_id, order)
    before = await domain.snapshot()

    noop = await domain.handler(compensation)(request(order))
    forward = SPEC.forward_of(compensation)
    with pytest.raises(StepRejected) as refused:
        await domain.handler(forward)(request(order))

    assert noop.status is StepStatus.NOOP
    assert await domain.snapshot() == before
    assert str(refused.value) == f"{compensation} ran before {forward}"


@pytest.mark.parametrize("step", SPEC.forward_steps, ids=str)
async def test_a_step_fenced_by_a_cancel_is_refused_saying_so_when_it_arrives_late(
    domain: Domain, step: StepName
) -> None:
    order = make_order()
    await domain.orders.place(order.order_id, order)
    before = await domain.snapshot()

    await domain.service_of(step).fence(order.order_id, step)
    with pytest.raises(StepRejected) as refused:
        await domain.handler(step)(request(order))

    assert await domain.snapshot() == before
    assert str(refused.value) == f"the saga was cancelled before {step} committed"


async def test_fifty_concurrent_reservations_for_ten_units_reserve_exactly_ten(
    store_factory: StoreFactory,
) -> None:
    scarce = SeedData(products={"rare": Product(name="Rare", price_cents=100, stock=10)}, points={})
    setup = await Domain(store_factory, ORDERS_V1).open()
    await seed(setup, scarce)
    # Five independent connections race, as five worker processes would.
    domains = [await Domain(store_factory, ORDERS_V1).open() for _ in range(5)]
    orders = [
        make_order(
            f"race-{i}", items=[LineItem(product_id="rare", quantity=1, unit_price_cents=100)]
        )
        for i in range(50)
    ]

    async def reserve(index: int, order: OrderRequest) -> bool:
        try:
            await domains[index % 5].inventory.reserve_inventory(request(order))
        except BusinessFailure as failure:
            assert failure.reason is Reason.OUT_OF_STOCK
            return False
        return True

    won = await asyncio.gather(*(reserve(i, order) for i, order in enumerate(orders)))

    state = await setup.snapshot()
    assert sum(won) == 10
    assert state.stock == {"rare": 0}
    assert sum(lines["rare"] for lines in state.reserved.values()) == 10
    for opened in (setup, *domains):
        await opened.close()


async def test_a_forward_step_racing_its_compensation_ends_undone_or_refused_never_both_missed(
    store_factory: StoreFactory,
) -> None:
    # Two connections, as the step and its compensation would arrive from two processes; on
    # Postgres both would see "no row" under READ COMMITTED without the per-saga lock.
    domains = [await Domain(store_factory, ORDERS_V1).open() for _ in range(2)]
    await seed(domains[0])
    orders = [make_order(f"race-{i}") for i in range(20)]

    async def race(order: OrderRequest) -> tuple[StepStatus, StepStatus]:
        async def charge() -> StepStatus:
            try:
                return (await domains[0].payment.charge_payment(request(order))).status
            except StepRejected:
                return StepStatus.REJECTED

        refund = domains[1].payment.refund_payment(request(order))
        charged, refunded = await asyncio.gather(charge(), refund)
        return charged, refunded.status

    results = await asyncio.gather(*(race(order) for order in orders))

    assert set(results) <= {
        (StepStatus.DONE, StepStatus.DONE),  # charged, then refunded
        (StepStatus.REJECTED, StepStatus.NOOP),  # tombstoned first, the charge refused
    }
    charges = (await domains[0].snapshot()).charges
    assert all(c.refunded_cents == c.amount_cents for c in charges)
    assert len(charges) == sum(1 for charged, _ in results if charged is StepStatus.DONE)
    for opened in domains:
        await opened.close()


async def test_a_multi_line_order_with_one_line_out_of_stock_reserves_nothing(
    domain: Domain,
) -> None:
    before = await domain.snapshot()
    order = make_order(
        items=[
            LineItem(product_id="widget", quantity=2, unit_price_cents=1999),
            LineItem(product_id="sold-out", quantity=1, unit_price_cents=999),
        ]
    )

    with pytest.raises(BusinessFailure) as failure:
        await domain.inventory.reserve_inventory(request(order))

    assert failure.value.reason is Reason.OUT_OF_STOCK
    assert await domain.snapshot() == before


async def test_a_business_failure_is_recorded_and_returned_again(domain: Domain) -> None:
    order = make_order(payment_method="card-0002")
    for _ in range(2):
        with pytest.raises(BusinessFailure) as failure:
            await domain.payment.charge_payment(request(order))
        assert failure.value.reason is Reason.PAYMENT_DECLINED
    assert (await domain.snapshot()).charges == []


@pytest.mark.parametrize(
    ("changes", "step", "reason"),
    [
        (
            {"customer_id": "bob", "points_to_use": 500},
            StepName.DEDUCT_POINTS,
            Reason.INSUFFICIENT_POINTS,
        ),
        (
            {"shipping_address": US.model_copy(update={"country": "AQ"})},
            StepName.CREATE_SHIPMENT,
            Reason.SHIPMENT_FAILED,
        ),
    ],
)
async def test_business_rules_fail_with_their_reason(
    domain: Domain, changes: dict[str, Any], step: StepName, reason: Reason
) -> None:
    order = make_order(**changes)
    with pytest.raises(BusinessFailure) as failure:
        await domain.handler(step)(request(order))
    assert failure.value.reason is reason


async def test_the_live_catalogue_is_read_from_the_stores_and_refuses_what_it_lacks(
    domain: Domain,
) -> None:
    await domain.inventory.seed({"widget": ("Widget", 2_100, 3)})
    await domain.points.seed({"zoe": 0})
    before = await domain.snapshot()
    order = make_order(
        customer_id="zoe",
        points_to_use=0,
        items=[
            LineItem(product_id="widget", quantity=1, unit_price_cents=2_100),
            LineItem(product_id="unicorn", quantity=1, unit_price_cents=1),
        ],
    )
    with pytest.raises(InvalidOrder, match=r"^items\[1\]\.product_id: unknown product 'unicorn'"):
        await admit(domain, order)
    await admit(domain, order.model_copy(update={"items": order.items[:1]}))
    assert await domain.snapshot() == before


async def test_listings_and_balances_read_only_the_ids_asked_for(domain: Domain) -> None:
    await domain.inventory.seed({"widget": ("Widget", 2_100, 3), "gadget": ("Gadget", 900, 1)})
    await domain.points.seed({"zoe": 10, "yan": 20})

    assert await domain.inventory.listings(["gadget", "unicorn", "gadget"]) == {
        "gadget": ("Gadget", 900)
    }
    assert await domain.points.balances(["yan", "nobody"]) == {"yan": 20}
    assert await domain.points.balances([]) == {}
    assert set(await domain.inventory.listings()) == {"widget", "gadget"}


async def test_business_and_technical_failures_are_distinct_types(domain: Domain) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.RESERVE_INVENTORY, transient=1)])

    with pytest.raises(TransientFailure) as technical:
        await faulty_step(domain, StepName.RESERVE_INVENTORY, request(order), plan, variant="t")

    assert not isinstance(technical.value, BusinessFailure)
    assert (await domain.snapshot()).reserved == {}
    done = await faulty_step(
        domain, StepName.RESERVE_INVENTORY, request(order, attempt=2), plan, variant="t"
    )
    assert done.status is StepStatus.DONE


async def test_a_lost_acknowledgement_commits_once_and_the_redelivery_replays(
    domain: Domain,
) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.RESERVE_INVENTORY, duplicate=True)])

    with pytest.raises(TransientFailure, match="acknowledgement lost"):
        await faulty_step(domain, StepName.RESERVE_INVENTORY, request(order), plan, variant="t")
    again = await faulty_step(
        domain, StepName.RESERVE_INVENTORY, request(order, attempt=2), plan, variant="t"
    )

    assert again.replayed
    assert (await domain.snapshot()).stock["widget"] == DEFAULT_SEED.products["widget"].stock - 2


@pytest.mark.parametrize("point", list(CrashPoint))
async def test_an_injected_crash_keeps_or_drops_the_commit_by_its_point(
    domain: Domain, point: CrashPoint
) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, crash=point)])

    with pytest.raises(Died):
        await faulty_step(domain, StepName.CHARGE_PAYMENT, request(order), plan, variant="t")

    charges = (await domain.snapshot()).charges
    assert len(charges) == (1 if point is CrashPoint.AFTER_COMMIT else 0)


async def test_a_permanent_fault_on_a_forward_step_carries_its_reason(domain: Domain) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.CREATE_SHIPMENT, permanent=True)])
    with pytest.raises(BusinessFailure) as failure:
        await faulty_step(domain, StepName.CREATE_SHIPMENT, request(order), plan, variant="t")
    assert failure.value.reason is Reason.SHIPMENT_FAILED


async def test_a_hang_never_answers_until_cancelled(domain: Domain) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.RESERVE_INVENTORY, hang=True)])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            faulty_step(domain, StepName.RESERVE_INVENTORY, request(order), plan, variant="t"),
            timeout=0.3,
        )
    assert (await domain.snapshot()).reserved == {}


async def test_a_hung_attempt_cut_off_in_flight_is_an_error_span_marked_cancelled(
    domain: Domain, span_exporter: InMemorySpanExporter
) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.RESERVE_INVENTORY, hang=True)])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(
            faulty_step(domain, StepName.RESERVE_INVENTORY, request(order), plan),
            timeout=0.2,
        )

    (span,) = [s for s in span_exporter.get_finished_spans() if s.name == "reserve_inventory"]
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["saga.outcome"] == "cancelled"
    assert "cut off in flight" in (span.status.description or "")


async def test_step_spans_carry_the_canonical_attributes_and_fault_events(
    domain: Domain, span_exporter: InMemorySpanExporter
) -> None:
    order = make_order()
    plan = FaultPlan(rules=[FaultRule(step=StepName.RESERVE_INVENTORY, delay_ms=1)])
    await faulty_step(domain, StepName.RESERVE_INVENTORY, request(order), plan, variant="v")

    (span,) = [s for s in span_exporter.get_finished_spans() if s.name == "reserve_inventory"]
    assert dict(span.attributes or {}) == {
        "saga.id": "o-1",
        "saga.variant": "v",
        "saga.step": "reserve_inventory",
        "saga.phase": "forward",
        "saga.attempt": 1,
        "saga.outcome": "done",
    }
    assert [e.name for e in span.events] == ["saga.fault_injected"]


async def test_completing_an_order_twice_is_once_and_closing_a_completed_order_is_refused(
    domain: Domain,
) -> None:
    order = make_order()
    await run_forward(domain, order, StepName.COMPLETE_ORDER)
    await domain.orders.complete_order(request(order, attempt=2))

    assert not await domain.orders.close(order.order_id, SagaStatus.COMPENSATED, None)
    (record,) = (await domain.snapshot()).orders
    assert record.status is SagaStatus.COMPLETED


async def test_an_operator_s_retry_runs_a_refused_completion_again_and_completes_the_order(
    domain: Domain,
) -> None:
    """A refusal is replayed to a repeat of the saga's own run; an operator's retry (round 1)
    runs the step again, and the order waiting for an operator becomes COMPLETED."""
    order = make_order()
    await run_forward(domain, order, StepName.CREATE_SHIPMENT)
    assert await domain.orders.close(order.order_id, SagaStatus.NEEDS_INTERVENTION, None)
    for attempt in (1, 2):
        with pytest.raises(BusinessFailure):
            await domain.orders.complete_order(request(order, attempt=attempt))

    retried = StepRequest(saga_id=order.order_id, order=order, round=1)
    done = await domain.orders.complete_order(retried)
    again = await domain.orders.complete_order(retried.model_copy(update={"attempt": 2}))

    assert (done.status, done.replayed) == (StepStatus.DONE, False)
    assert (again.status, again.replayed) == (StepStatus.DONE, True)
    (record,) = (await domain.snapshot()).orders
    assert record.status is SagaStatus.COMPLETED


async def test_an_order_placed_once_keeps_its_first_verdict_whatever_a_second_place_says(
    domain: Domain,
) -> None:
    refused, admitted = make_order("o-refused"), make_order("o-admitted")
    rejected = await domain.orders.place("s-refused", refused, rejected=Reason.PRICE_MISMATCH)
    placed = await domain.orders.place("s-admitted", admitted)

    again_refused = await domain.orders.place("s-refused", refused)
    again_admitted = await domain.orders.place(
        "s-admitted", admitted, rejected=Reason.UNKNOWN_CUSTOMER
    )

    assert (rejected.status, rejected.reason, rejected.first) == (
        SagaStatus.REJECTED,
        Reason.PRICE_MISMATCH,
        True,
    )
    assert (placed.status, placed.first) == (SagaStatus.RUNNING, True)
    assert (again_refused.status, again_refused.reason, again_refused.first) == (
        SagaStatus.REJECTED,
        Reason.PRICE_MISMATCH,
        False,
    )
    assert (again_admitted.status, again_admitted.first) == (SagaStatus.RUNNING, False)
    records = {r.saga_id: (r.status, r.reason) for r in (await domain.snapshot()).orders}
    assert records == {
        "s-refused": (SagaStatus.REJECTED, Reason.PRICE_MISMATCH),
        "s-admitted": (SagaStatus.RUNNING, None),
    }
    assert not await domain.orders.close("s-refused", SagaStatus.COMPENSATED, None)


async def test_a_step_cancelled_at_any_await_point_is_whole_or_absent_and_the_store_stays_usable(
    domain: Domain,
) -> None:
    """Cancel the step after 0, 1, 2 ... turns of the loop, until it ends before the cancel:
    each time the charge and its step log entry are both there or both absent (run again, the
    step replays the one or does the other), and the store keeps working."""
    for turns in itertools.count():
        assert turns < 100_000, "the step never ended"
        order = make_order(f"o-{turns}")
        task = asyncio.create_task(domain.payment.charge_payment(request(order)))
        for _ in range(turns):
            await asyncio.sleep(0)
        if task.done():
            break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        charged = order.order_id in [c.saga_id for c in (await domain.snapshot()).charges]
        again = await domain.payment.charge_payment(request(order, attempt=2))
        assert again.status is StepStatus.DONE
        assert again.replayed is charged, f"cancelled after {turns} turns: half a step"


async def test_a_step_whose_hook_raises_rolls_back_whole(domain: Domain) -> None:
    order = make_order()

    def within(tx: Tx, result: StepResult) -> None:
        raise RuntimeError("the outbox write failed")

    with pytest.raises(RuntimeError, match="outbox write failed"):
        await domain.payment.charge_payment(request(order), within)

    assert (await domain.snapshot()).charges == []
    done = await domain.payment.charge_payment(request(order, attempt=2))
    assert done.status is StepStatus.DONE and not done.replayed


async def test_reservation_lines_are_taken_in_product_order_whatever_the_order_lists(
    domain: Domain,
) -> None:
    # Concurrent multi-line reservations must lock product rows in one order (a deadlock on
    # a multi-writer backend otherwise): the first line to run out is the first by product id.
    order = make_order(
        items=[
            LineItem(product_id="sold-out", quantity=1, unit_price_cents=999),
            LineItem(product_id="gadget", quantity=1_000, unit_price_cents=4950),
        ]
    )
    with pytest.raises(BusinessFailure, match="not enough stock of gadget for 1000"):
        await domain.inventory.reserve_inventory(request(order))


class AskedEnds:
    """Wraps the points service's view of the orders service: which saga ids it asked about."""

    def __init__(self, domain: Domain) -> None:
        ends = domain.points.order_ends
        assert ends is not None  # the points lock is on by default
        self.ends = ends
        self.asked: list[list[str]] = []
        domain.points.order_ends = self

    async def __call__(self, saga_ids: Collection[str]) -> set[str]:
        self.asked.append(sorted(saga_ids))
        return await self.ends(saga_ids)


async def test_a_deduction_the_balance_covers_asks_nothing_about_the_customer_s_other_sagas(
    domain: Domain,
) -> None:
    """Its work must not grow with the customer's sagas in flight (the bench's one-customer
    endurance run collapsed: every deduction asked the orders store about every hold)."""
    in_flight = [make_order(f"held-{n}", points_to_use=10) for n in range(20)]
    for order in in_flight:
        await domain.orders.place(order.order_id, order)
        await domain.points.deduct_points(request(order))
    asked = AskedEnds(domain)

    late = make_order("late", points_to_use=10)
    await domain.orders.place(late.order_id, late)
    result = await domain.points.deduct_points(request(late))

    assert result.status is StepStatus.DONE
    assert asked.asked == []
    assert (await domain.points.balances(["alice"]))["alice"] == 5_000 - 21 * 10


async def test_a_deduction_short_of_points_drops_the_holds_of_ended_sagas_and_waits_on_the_rest(
    domain: Domain,
) -> None:
    """Only when pending points could change the answer does it ask which holders ended."""
    ended, running = make_order("ended", points_to_use=2_000), make_order("running")
    for order in (ended, running):
        await domain.orders.place(order.order_id, order)
        await domain.points.deduct_points(request(order))
    await domain.orders.complete_order(request(ended))  # its hold is stale from now on
    asked = AskedEnds(domain)

    # 5,000 - 2,100 = 2,900 left: 2,950 is short by 50, within the running saga's 100 held.
    short = make_order("short", points_to_use=2_950)
    await domain.orders.place(short.order_id, short)
    with pytest.raises(LockWait) as waiting:
        await domain.points.deduct_points(request(short))

    assert waiting.value.holders == ["running"]
    assert asked.asked == [["ended", "running"]]
    held = await domain.points.store.query("SELECT saga_id FROM holds ORDER BY saga_id")
    assert [row["saga_id"] for row in held] == ["running"]
    assert (await domain.points.waiting(["short"]))["short"].held_by == ["running"]

    # Beyond what the running saga could give back: refused at once, nothing asked again.
    beyond = make_order("beyond", points_to_use=3_001)
    await domain.orders.place(beyond.order_id, beyond)
    with pytest.raises(BusinessFailure) as refused:
        await domain.points.deduct_points(request(beyond))
    assert refused.value.reason is Reason.INSUFFICIENT_POINTS
