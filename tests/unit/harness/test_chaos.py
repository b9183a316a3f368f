"""The chaos run's plan and its findings, from hand-made runs (no servers)."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.chaos.analysis import EventAudit, analyse
from harness.chaos.drive import KillRecord, SagaRecord, VariantRun
from harness.chaos.plan import (
    CHOREOGRAPHY_KINDS,
    MIX,
    ChaosOrder,
    Kill,
    chaos_seed,
    draw_kills,
    draw_orders,
    parse_kinds,
    target_of,
)
from harness.compare.namespace import Namespace
from shared.contracts import (
    BusinessState,
    Charge,
    OrderRecord,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepName,
    StepState,
    StepStatus,
)
from shared.definitions import ORDERS_V1
from shared.validation import InvalidInput

NAMESPACE = Namespace("t1")


def test_the_same_seed_draws_the_same_orders_and_kills_and_another_seed_others() -> None:
    first = draw_orders(7, 50), draw_kills(7, ["payment", "nats"], 60.0, (2.0, 4.0))
    again = draw_orders(7, 50), draw_kills(7, ["payment", "nats"], 60.0, (2.0, 4.0))
    other = draw_orders(8, 50), draw_kills(8, ["payment", "nats"], 60.0, (2.0, 4.0))

    assert first == again
    assert first != other


def test_a_large_mix_holds_every_kind_of_order() -> None:
    kinds = Counter(order.kind for order in draw_orders(3, 1_000))

    assert set(kinds) == {kind for kind, _ in MIX}
    assert kinds["happy"] > kinds["crash_during_refund"]


def test_kills_fall_inside_the_submission_window_with_downtimes_in_range() -> None:
    kills = draw_kills(1, list(CHOREOGRAPHY_KINDS), 100.0, (2.0, 4.0))

    assert [k.kind for k in sorted(kills, key=lambda k: k.kind)] == sorted(CHOREOGRAPHY_KINDS)
    assert all(15.0 <= k.at_s <= 65.0 and 2.0 <= k.down_s <= 4.0 for k in kills)
    assert [k.at_s for k in kills] == sorted(k.at_s for k in kills)


def test_a_kill_hits_the_process_that_runs_that_code_in_each_style() -> None:
    assert target_of("payment", "choreography") == "payment"
    assert target_of("payment", "orchestration") == "worker"
    assert target_of("tracker", "orchestration") == "worker"
    assert (target_of("nats", "choreography"), target_of("nats", "orchestration")) == ("nats", None)
    assert (target_of("worker", "choreography"), target_of("temporal", "choreography")) == (
        None,
        None,
    )
    assert target_of("postgres", "choreography") == target_of("postgres", "orchestration")


def test_the_relay_and_unknown_kinds_are_refused_naming_what_to_do() -> None:
    with pytest.raises(InvalidInput, match="relay is a task inside each service process"):
        parse_kinds("payment,relay")
    with pytest.raises(InvalidInput, match="unknown kind; choose from inventory"):
        parse_kinds("payments")
    assert parse_kinds(" payment , worker,nats ") == ["payment", "worker", "nats"]


def test_the_calm_reference_order_keeps_everything_but_its_crash_point() -> None:
    crashing = next(o for o in draw_orders(2, 400) if o.kind == "crash_after_charge")

    calm = crashing.calm()

    assert [rule.crash for rule in crashing.case.faults.rules] != [None]
    assert calm.case.faults.rules == [] and calm.case.order == crashing.case.order


def outcome(saga_id: str, status: SagaStatus, reason: Reason | None = None) -> SagaOutcome:
    return SagaOutcome(saga_id=saga_id, order_id=saga_id, status=status, reason=reason)


def record(
    order: ChaosOrder, due: float, ended: float | None, result: SagaOutcome | None
) -> SagaRecord:
    saga_id = NAMESPACE.saga_id(order.case.order.order_id)
    return SagaRecord(order, saga_id, due, submitted_at=due, ended_at=ended, outcome=result)


def run_of(records: list[SagaRecord], charges: list[Charge], kills: list[KillRecord]) -> VariantRun:
    run = VariantRun("choreography", NAMESPACE, 0.0, 2.0, records, kills, finished_at=30.0)
    orders = [
        OrderRecord(
            saga_id=r.saga_id,
            order_id=r.order.case.order.order_id,
            total_cents=r.order.case.order.total_cents,
            status=r.outcome.status if r.outcome else SagaStatus.RUNNING,
            reason=r.outcome.reason if r.outcome else None,
        )
        for r in records
    ]
    seed = chaos_seed(len(records))
    stock = {p: product.stock for p, product in seed.products.items()}
    run.state = BusinessState(
        stock=stock,
        reserved={},
        charges=charges,
        points=dict(seed.points),
        shipments=[],
        orders=orders,
    )
    return run


def test_stuck_lost_and_doubly_charged_sagas_fail_the_run_and_a_deadline_does_not() -> None:
    declined = [o for o in draw_orders(4, 300) if o.kind == "declined"][:3]
    timed_out = record(
        declined[0], 1.0, 9.0, outcome("a", SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    )
    stuck_state = outcome("b", SagaStatus.RUNNING).model_copy(
        update={
            "steps": [
                StepState(step=StepName.CHARGE_PAYMENT, phase="forward", status=StepStatus.RUNNING)
            ]
        }
    )
    stuck = record(declined[1], 2.0, None, stuck_state)
    lost = record(declined[2], 3.0, None, None)
    charge = Charge(
        saga_id=timed_out.saga_id, customer_id="alice", amount_cents=1, refunded_cents=1
    )
    run = run_of([timed_out, stuck, lost], [charge, charge], [])
    reference = {o.index: "COMPENSATED/payment_declined" for o in declined}

    report = analyse(run, reference, chaos_seed(3), EventAudit(checked=True), ORDERS_V1)

    assert (report.terminal, report.timed_out, report.timed_out_differences) == (1, 1, 1)
    assert report.stuck_by_step == {"charge_payment": 1}
    assert report.lost == [lost.saga_id]
    assert report.double_charges >= 1
    failures = " ".join(report.failures)
    assert "1 sagas lost" in failures and "1 sagas stuck" in failures
    assert "double charges" in failures and "timed" not in failures


def test_the_backlog_of_a_kill_is_drained_when_the_last_saga_in_flight_or_due_meanwhile_ends() -> (
    None
):
    happy = [o for o in draw_orders(5, 100) if o.kind == "happy"][:4]
    done = outcome("x", SagaStatus.COMPLETED)
    records = [
        record(happy[0], 5.0, 8.0, done),  # ended before the kill: not its backlog
        record(happy[1], 9.0, 15.0, done),  # in flight at the kill
        record(happy[2], 11.0, 13.0, done),  # due while the process was down
        record(happy[3], 13.0, 20.0, done),  # due after it was back
    ]
    kill = KillRecord(Kill(10.0, "payment", 2.0), "payment", pid=1, killed_at=10.0, back_at=12.0)

    run = run_of(records, [], [kill])
    report = analyse(run, {}, chaos_seed(4), EventAudit(checked=True), ORDERS_V1)

    (drain,) = report.kills
    assert (drain.at_s, drain.back_s, drain.drained_s) == (10.0, 12.0, 5.0)
    windows = {latency.window: latency.sagas for latency in report.latency}
    assert windows == {"before": 2, "during": 1, "after": 1}
