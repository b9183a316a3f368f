"""Swimlanes: one per service or process, read off the resource or the span itself."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from harness.report.lanes import lane_of, lane_rank, span_class
from harness.report.trace_file import Span


def span(
    name: str,
    kind: int = 1,
    service: str = "saga-compare",
    attrs: Mapping[str, object] | None = None,
) -> Span:
    attributes = dict(attrs or {})
    return Span(
        trace_id="a" * 32,
        span_id="b" * 16,
        parent_span_id="c" * 16,
        name=name,
        kind=kind,
        start_ns=0,
        end_ns=1,
        attributes=dict(attributes),
        events=[],
        status=0,
        service=service,
    )


@pytest.mark.parametrize(
    ("given", "lane"),
    [
        (span("charge_payment", attrs={"saga.step": "charge_payment"}), "payment"),
        (span("release_inventory", attrs={"saga.step": "release_inventory"}), "inventory"),
        (
            span(
                "process saga.order.placed.o-1",
                5,
                attrs={"messaging.consumer.group.name": "inventory"},
            ),
            "inventory",
        ),
        (span("send saga.inventory.reserved.points-1-x", 4), "inventory"),
        (span("create saga.order.placed.o-1", 4), "orders"),
        (span("RunActivity:refund_payment", 2), "payment"),
        (span("RunActivity:place_order", 2), "orders"),
        (span("StartActivity:reserve_inventory", 3), "workflow"),
        (span("RunWorkflow:OrderSaga", 2), "workflow"),
        (span("StartWorkflow:OrderSaga", 3), "harness"),
        (span("SignalWorkflow:cancel", 3), "harness"),
        (span("close_saga"), "orders"),
        (span("cancel timed_out"), "orders"),
    ],
    ids=lambda value: value.name if isinstance(value, Span) else value,
)
def test_spans_of_one_process_get_their_lane_from_their_own_name_and_attributes(
    given: Span, lane: str
) -> None:
    assert lane_of(given) == lane


def test_a_resource_that_names_a_service_decides_the_lane() -> None:
    handler = span("process saga.payment.charged", 5, service="choreography-points")
    assert lane_of(handler) == "points"
    assert lane_of(span("RunActivity:charge_payment", 2, service="orchestration-worker")) == (
        "payment"
    )


def test_the_workers_resource_is_a_process_not_the_orders_service() -> None:
    worker = "order-saga-worker"
    assert lane_of(span("RunActivity:charge_payment", 2, service=worker)) == "payment"
    assert lane_of(
        span("charge_payment", service=worker, attrs={"saga.step": "charge_payment"})
    ) == ("payment")
    assert lane_of(span("RunWorkflow:OrderSaga", 2, service=worker)) == "workflow"
    assert lane_of(span("RunActivity:place_order", 2, service=worker)) == "orders"


def test_the_root_span_runs_in_the_harness_lane() -> None:
    assert lane_of(span("saga orchestration o-1"), root=True) == "harness"


def test_lanes_go_coordination_first_then_services_in_saga_order() -> None:
    lanes = ["orders", "other", "points", "harness", "inventory", "workflow"]
    assert sorted(lanes, key=lane_rank) == [
        "harness",
        "workflow",
        "inventory",
        "points",
        "orders",
        "other",
    ]


def test_steps_are_drawn_by_phase_and_failed_or_retried_attempts_stand_out() -> None:
    compensate = {"saga.step": "refund_payment", "saga.phase": "compensate"}
    assert span_class(span("refund_payment", attrs=compensate)) == "step compensate"
    retry = {"saga.step": "charge_payment", "saga.phase": "forward", "saga.attempt": 2}
    assert span_class(span("charge_payment", attrs=retry)) == "step retry"
    failed = span("charge_payment", attrs={"saga.step": "charge_payment", "saga.phase": "forward"})
    failed.status = 2
    assert span_class(failed) == "step forward failed"
    assert span_class(span("send saga.order.placed", 4)) == "send"
    assert span_class(span("create saga.order.placed", 4)) == "send"  # files from before
    assert span_class(span("process saga.order.placed", 5)) == "handler"
