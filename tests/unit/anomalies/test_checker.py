"""The history checker and the invariants, each on a hand-written run with one anomaly of each
kind: both find exactly those five, in the same sagas; the same run with every countermeasure's
way of doing it has none."""

from __future__ import annotations

from typing import Any

from harness.anomalies.checker import check
from harness.anomalies.history import CATALOGUE, Entry
from harness.anomalies.invariants import Settled, violations
from harness.anomalies.kinds import Anomaly
from harness.compare.scenarios import HOME
from shared.contracts import (
    BusinessState,
    Charge,
    LineItem,
    OrderRecord,
    OrderRequest,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepState,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.seed import Product, SeedData

SPEC = ORDERS_V1.spec
SEED = SeedData(
    products={
        "widget": Product(name="Widget", price_cents=1_000, stock=10),
        "gizmo": Product(name="Gizmo", price_cents=100, stock=20),
    },
    points={"alice": 100},
)
EVERY_ANOMALY = {
    (Anomaly.LOST_UPDATE, ("L1", "L2")),
    (Anomaly.DIRTY_READ, ("D1", "D2")),
    (Anomaly.FUZZY_READ, ("F",)),
    (Anomaly.CANCEL_OVERWRITTEN, ("C",)),
    (Anomaly.EARLY_COMPENSATION, ("E",)),
}


class Run:
    """Entries written by hand, one time unit apart."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def __call__(self, kind: str, saga: str, **fields: Any) -> Run:
        n = len(self.entries) + 1
        self.entries.append(Entry(seq=n, at=float(n), kind=kind, saga=saga, **fields))
        return self


def forward(step: str, attempt: int = 1) -> dict[str, Any]:
    return {"step": step, "phase": "forward", "attempt": attempt}


def back(step: str) -> dict[str, Any]:
    return {"step": step, "phase": "compensate", "attempt": 1}


def anomalous_history() -> list[Entry]:
    run = Run()
    # 1. L1's release writes back the stock it read, over L2's reservation.
    run("write", "L1", key="stock/widget", value=8, read=10, **forward("reserve_inventory"))
    run("write", "L2", key="stock/widget", value=5, read=8, **forward("reserve_inventory"))
    run("write", "L1", key="stock/widget", value=10, **back("release_inventory"))
    # 2. D2 is refused on the 100 points D1 takes, then gives back.
    run("start", "D2", points=100, total=1_000)
    run("write", "D1", key="points/alice", value=0, read=100, **forward("deduct_points"))
    run("read", "D2", key="points/alice", value=0, **forward("deduct_points"))
    run("step", "D2", outcome="failed", reason="insufficient_points", **forward("deduct_points"))
    run("write", "D1", key="points/alice", value=100, read=0, **back("restore_points"))
    run("end", "D2", outcome="COMPENSATED", reason="insufficient_points")
    # 3. F reads the price at admission and again at its charge, after the shop changed it.
    run("read", "F", step="admission", key="price/gizmo", value=100)
    run("write", CATALOGUE, key="price/gizmo", value=150)
    run("read", "F", key="price/gizmo", value=150, **forward("charge_payment"))
    run("write", "F", key="charge/F", value=300, **forward("charge_payment"))
    # 4. C ended compensated; its completion comes after and writes blind.
    run("end", "C", outcome="COMPENSATED", reason="cancelled_by_customer")
    run("write", "C", key="order/C", value="COMPLETED", **forward("complete_order"))
    # 5. E's reservation is fenced, E ends compensated, then the reservation commits.
    run("fence", "E", step="reserve_inventory", outcome="fenced")
    run("end", "E", outcome="COMPENSATED", reason="cancelled_by_customer")
    run("write", "E", key="stock/gizmo", value=18, read=20, **forward("reserve_inventory"))
    run("step", "E", outcome="done", **forward("reserve_inventory"))
    return run.entries


def countermeasured_history() -> list[Entry]:
    """The same interleavings, each as its countermeasure makes it."""
    run = Run()
    run("write", "L1", key="stock/widget", value=8, read=10, **forward("reserve_inventory"))
    run("write", "L2", key="stock/widget", value=5, read=8, **forward("reserve_inventory"))
    run("write", "L1", key="stock/widget", value=7, read=5, **back("release_inventory"))
    run("start", "D2", points=100, total=1_000)
    run("write", "D1", key="points/alice", value=0, read=100, **forward("deduct_points"))
    run("step", "D2", outcome="transient", **forward("deduct_points"))
    run("write", "D1", key="points/alice", value=100, read=0, **back("restore_points"))
    run("write", "D2", key="points/alice", value=0, read=100, **forward("deduct_points", 2))
    run("end", "D2", outcome="COMPLETED")
    run("read", "F", step="admission", key="price/gizmo", value=100)
    run("write", CATALOGUE, key="price/gizmo", value=150)
    run("read", "F", key="price/gizmo", value=150, **forward("charge_payment"))
    run("step", "F", outcome="failed", reason="price_changed", **forward("charge_payment"))
    run("end", "C", outcome="COMPENSATED", reason="cancelled_by_customer")
    run("read", "C", key="order/C", value="COMPENSATED", **forward("complete_order"))
    run("step", "C", outcome="failed", **forward("complete_order"))
    run("fence", "E", step="reserve_inventory", outcome="fenced")
    run("end", "E", outcome="COMPENSATED", reason="cancelled_by_customer")
    run("step", "E", outcome="rejected", **forward("reserve_inventory"))
    return run.entries


def order(saga: str, product: str, quantity: int, price: int, points: int = 0) -> OrderRequest:
    return OrderRequest(
        order_id=saga,
        customer_id="alice",
        items=[LineItem(product_id=product, quantity=quantity, unit_price_cents=price)],
        payment_method="card-4242",
        points_to_use=points,
        shipping_address=HOME,
    )


def outcome(saga: str, status: SagaStatus, reason: str | None = None, *done: str) -> SagaOutcome:
    steps = [
        StepState(step=step, phase=SPEC.phase_of(step), status=StepStatus.DONE, attempts=1)
        for step in done
    ]
    return SagaOutcome.model_validate(
        {"saga_id": saga, "order_id": saga, "status": status, "reason": reason, "steps": steps}
    )


def settled_sagas(*, anomalous: bool = True) -> list[Settled]:
    compensated, completed = SagaStatus.COMPENSATED, SagaStatus.COMPLETED
    cancelled = Reason.CANCELLED_BY_CUSTOMER
    refused = outcome("D2", compensated, Reason.INSUFFICIENT_POINTS)
    deducted = outcome("D2", completed, None, "deduct_points")
    return [
        Settled("L1", order("L1", "widget", 2, 1_000), outcome("L1", compensated, "declined")),
        Settled("L2", order("L2", "widget", 3, 1_000), outcome("L2", completed)),
        Settled(
            "D1",
            order("D1", "gizmo", 1, 100, points=100),
            outcome("D1", compensated, "shipment_failed", "deduct_points", "restore_points"),
        ),
        Settled(
            "D2",
            order("D2", "gizmo", 1, 100, points=100),
            refused if anomalous else deducted,
        ),
        Settled("F", order("F", "gizmo", 2, 100), outcome("F", completed)),
        Settled("C", order("C", "gizmo", 1, 100), outcome("C", compensated, cancelled)),
        Settled("E", order("E", "gizmo", 2, 100), outcome("E", compensated, cancelled)),
    ]


def final_state(*, anomalous: bool) -> BusinessState:
    sagas = settled_sagas(anomalous=anomalous)
    records = [
        OrderRecord(
            saga_id=s.saga_id,
            order_id=s.saga_id,
            total_cents=s.order.total_cents,
            status=s.outcome.status,
        )
        for s in sagas
    ]
    if anomalous:
        records = [
            r.model_copy(update={"status": SagaStatus.COMPLETED}) if r.saga_id == "C" else r
            for r in records
        ]
    charge = 300 if anomalous else 200
    return BusinessState(
        stock={"widget": 10 if anomalous else 7, "gizmo": 16 if anomalous else 18},
        reserved={
            "L2": {"widget": 3},
            "F": {"gizmo": 2},
            **({"E": {"gizmo": 2}} if anomalous else {}),
        },
        charges=[
            Charge(saga_id="L2", customer_id="alice", amount_cents=3_000, refunded_cents=0),
            Charge(saga_id="F", customer_id="alice", amount_cents=charge, refunded_cents=0),
        ],
        points={"alice": 100 if anomalous else 0},
        shipments=[],
        orders=records,
    )


def kinds(findings: list[Any]) -> set[tuple[Anomaly, tuple[str, ...]]]:
    return {(f.anomaly, f.sagas) for f in findings}


def test_the_checker_finds_exactly_one_anomaly_of_each_kind_in_a_hand_written_history() -> None:
    assert kinds(check(anomalous_history(), SPEC)) == EVERY_ANOMALY


def test_the_invariants_find_the_same_anomalies_in_the_state_that_run_left() -> None:
    found = violations(SEED, final_state(anomalous=True), settled_sagas(), SPEC)

    assert kinds(found) == EVERY_ANOMALY


def test_with_every_countermeasure_neither_the_checker_nor_the_invariants_find_anything() -> None:
    assert check(countermeasured_history(), SPEC) == []
    clean = final_state(anomalous=False)
    assert violations(SEED, clean, settled_sagas(anomalous=False), SPEC) == []


def test_a_saga_that_completed_may_commit_a_step_after_a_void_fence() -> None:
    """The orchestration's late pivot: the cancel fenced it, it committed, the saga completed."""
    run = Run()
    run("fence", "P", step="create_shipment", outcome="fenced")
    run("step", "P", outcome="done", **forward("create_shipment"))
    run("write", "P", key="order/P", value="COMPLETED", read="RUNNING", **forward("complete_order"))
    run("end", "P", outcome="COMPLETED")

    assert check(run.entries, SPEC) == []


def test_a_late_commit_undone_by_its_compensation_is_no_leak() -> None:
    run = Run()
    run("fence", "Q", step="reserve_inventory", outcome="fenced")
    run("step", "Q", outcome="done", **forward("reserve_inventory"))
    run("step", "Q", outcome="done", **back("release_inventory"))
    run("end", "Q", outcome="COMPENSATED")

    assert check(run.entries, SPEC) == []


def test_a_refusal_on_points_that_were_never_given_back_is_no_dirty_read() -> None:
    run = Run()
    run("start", "B", points=100)
    run("write", "A", key="points/alice", value=0, read=100, **forward("deduct_points"))
    run("read", "B", key="points/alice", value=0, **forward("deduct_points"))
    run("step", "B", outcome="failed", reason="insufficient_points", **forward("deduct_points"))
    run("end", "B", outcome="COMPENSATED", reason="insufficient_points")

    assert check(run.entries, SPEC) == []


def test_a_refusal_in_a_saga_that_had_ended_already_is_no_dirty_read() -> None:
    """A late commit resurrected the saga; its refusal decided nothing it reported."""
    run = Run()
    run("start", "B", points=100)
    run("end", "B", outcome="COMPENSATED", reason="cancelled_by_customer")
    run("write", "A", key="points/alice", value=0, read=100, **forward("deduct_points"))
    run("read", "B", key="points/alice", value=0, **forward("deduct_points"))
    run("step", "B", outcome="failed", reason="insufficient_points", **forward("deduct_points"))
    run("write", "A", key="points/alice", value=100, read=0, **back("restore_points"))

    assert [f.anomaly for f in check(run.entries, SPEC)] == []


def test_blind_writes_whose_wiped_changes_cancel_out_lose_nothing() -> None:
    run = Run()
    run("write", "A", key="stock/widget", value=8, read=10, **forward("reserve_inventory"))
    run("write", "B", key="stock/widget", value=5, read=8, **forward("reserve_inventory"))
    run("write", "B", key="stock/widget", value=8, **back("release_inventory"))
    run("write", "A", key="stock/widget", value=10, **back("release_inventory"))

    assert check(run.entries, SPEC) == []
