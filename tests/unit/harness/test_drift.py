"""Drift: a trace's flow against the flow the spec declares for the saga's expected outcome."""

from __future__ import annotations

from pathlib import Path

from harness.report.drift import Outcome, declared, drift
from harness.report.flow import Edge, flow_of
from shared.definitions import ORDERS_V1
from tests.unit.harness.flow_support import HAPPY, choreography_trace, orchestration_trace

COMPLETED = Outcome("COMPLETED")
SHIPMENT_FAILED = Outcome("COMPENSATED", failed_step="create_shipment")
UNDO_AFTER_SHIPMENT = [
    ("shipping.failed", "shipping", "cancel_shipment", "noop"),
    ("shipping.cancelled", "points", "restore_points", "done"),
    ("points.restored", "payment", "refund_payment", "done"),
    ("payment.refunded", "inventory", "release_inventory", "done"),
]


def test_a_choreography_that_follows_the_spec_does_not_drift(tmp_path: Path) -> None:
    flow = flow_of(choreography_trace(tmp_path, HAPPY))

    found = drift(flow, COMPLETED, ORDERS_V1)

    assert found is not None and not found
    assert found.findings == ()


def test_an_event_routed_to_the_wrong_service_is_named_in_the_drift(tmp_path: Path) -> None:
    wrong = [*HAPPY]
    wrong[2] = (
        "inventory.reserved",
        "points",
        "deduct_points",
        "done",
    )  # points, not payment.charged

    found = drift(flow_of(choreography_trace(tmp_path, wrong)), COMPLETED, ORDERS_V1)

    assert found
    assert "extra trigger inventory -> points: inventory.reserved (of deduct_points)" in (
        found.findings
    )
    assert "missing trigger payment -> points: payment.charged (of deduct_points)" in (
        found.findings
    )


def test_a_step_that_never_ran_is_missing_and_one_the_spec_does_not_run_is_extra(
    tmp_path: Path,
) -> None:
    ran = [h for h in HAPPY if h[2] != "charge_payment"]
    ran.append(("shipping.created", "inventory", "release_inventory", "done"))

    found = drift(flow_of(choreography_trace(tmp_path, ran)), COMPLETED, ORDERS_V1)

    assert found
    assert any(m.startswith("step charge_payment") for m in found.missing)
    assert any(e.startswith("step release_inventory") for e in found.extra)


def test_two_steps_the_other_way_round_are_out_of_order(tmp_path: Path) -> None:
    calls = [
        ("charge_payment", "done"),
        ("reserve_inventory", "done"),
        ("deduct_points", "done"),
        ("create_shipment", "done"),
        ("complete_order", "done"),
    ]

    found = drift(flow_of(orchestration_trace(tmp_path, calls)), COMPLETED, ORDERS_V1)

    assert found
    assert found.out_of_order == ("charge_payment ran before reserve_inventory",)


def test_the_choreography_declares_each_hand_back_of_the_compensation_chain() -> None:
    path = declared(SHIPMENT_FAILED, "choreography", ORDERS_V1)

    assert [e.step for e in path] == [
        "reserve_inventory",
        "charge_payment",
        "deduct_points",
        "create_shipment",
        "cancel_shipment",
        "restore_points",
        "refund_payment",
        "release_inventory",
    ]
    assert path[4].trigger == Edge("shipping", "shipping", "shipping.failed")
    assert path[7].trigger == Edge("payment", "inventory", "payment.refunded")


def test_a_failed_compensation_hands_the_chain_on_with_compensation_failed() -> None:
    outcome = Outcome(
        "NEEDS_INTERVENTION",
        failed_step="create_shipment",
        failed_compensations=("refund_payment",),
    )

    path = declared(outcome, "choreography", ORDERS_V1)

    assert path[-1].trigger == Edge("payment", "inventory", "payment.compensation_failed")


def test_a_skipped_step_is_answered_in_the_choreography_and_not_called_by_the_workflow() -> None:
    outcome = Outcome("COMPLETED", skipped=("deduct_points",))

    events = declared(outcome, "choreography", ORDERS_V1)
    calls = declared(outcome, "orchestration", ORDERS_V1)

    assert [(e.step, e.skipped) for e in events][2] == ("deduct_points", True)
    assert events[3].trigger == Edge("points", "shipping", "points.skipped")
    assert "deduct_points" not in [e.step for e in calls]


def test_a_cancel_that_kept_a_step_from_starting_declares_only_the_undo() -> None:
    outcome = Outcome("COMPENSATED", stopped_before="create_shipment")

    assert [e.step for e in declared(outcome, "orchestration", ORDERS_V1)] == [
        "reserve_inventory",
        "charge_payment",
        "deduct_points",
        "restore_points",
        "refund_payment",
        "release_inventory",
    ]


def test_a_failure_after_the_pivot_undoes_nothing() -> None:
    outcome = Outcome("NEEDS_INTERVENTION", failed_step="complete_order")

    assert [e.step for e in declared(outcome, "orchestration", ORDERS_V1)][-1] == "complete_order"


def test_a_compensated_choreography_trace_matches_its_declared_chain(tmp_path: Path) -> None:
    hops = [*HAPPY[:3], ("points.deducted", "shipping", "create_shipment", "failed")]
    trace = choreography_trace(tmp_path, hops + UNDO_AFTER_SHIPMENT, "COMPENSATED")

    found = drift(flow_of(trace), SHIPMENT_FAILED, ORDERS_V1)

    assert found is not None and not found


def test_a_trace_without_step_spans_is_not_checked(tmp_path: Path) -> None:
    flow = flow_of(orchestration_trace(tmp_path, []))

    assert drift(flow, COMPLETED, ORDERS_V1) is None
