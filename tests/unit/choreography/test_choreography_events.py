"""Subjects, event ids, the envelope and the routing derived from the saga spec."""

from __future__ import annotations

import pytest

from choreography.events import (
    CANCEL_REQUESTED,
    PLACED,
    Meaning,
    Role,
    Routing,
    event_id,
    pattern,
    placed,
    subject,
)
from choreography.participants import kinds_for, reactions_for
from choreography.runtime import ChoreographySettings
from shared.contracts import (
    LineItem,
    OrderRequest,
    SagaPolicy,
    ServiceName,
    ShippingAddress,
    StepName,
)
from shared.definitions import ORDERS_V1
from shared.saga import SAGA

ORDER = OrderRequest(
    order_id="o-1",
    customer_id="alice",
    items=[LineItem(product_id="widget", quantity=1, unit_price_cents=100)],
    payment_method="card-4242",
    points_to_use=10,
    shipping_address=ShippingAddress(
        name="A", street="1 Main St", city="X", postal_code="1", country="US"
    ),
)
R, C, D, S, LAST = SAGA.forward_steps
ROUTES = Routing(ORDERS_V1)


def test_kinds_come_from_each_steps_token_and_past_tense_names() -> None:
    assert [ROUTES.done(step) for step in SAGA.forward_steps] == [
        "inventory.reserved",
        "payment.charged",
        "points.deducted",
        "shipping.created",
        "order.completed",
    ]
    assert ROUTES.compensated(StepName.CANCEL_SHIPMENT) == "shipping.cancelled"
    assert ROUTES.compensated(S) == "shipping.cancelled"
    assert ROUTES.compensation_failed(StepName.REFUND_PAYMENT) == "payment.compensation_failed"
    assert (ROUTES.failed(LAST), ROUTES.skipped(D), ROUTES.refused(C)) == (
        "order.failed",
        "points.skipped",
        "payment.refused",
    )


@pytest.mark.parametrize("kind", sorted(Routing(ORDERS_V1).meanings))
def test_every_subject_names_service_event_and_saga_and_parses_back(kind: str) -> None:
    value = subject(kind, "saga-1")

    assert value == f"saga.{kind}.saga-1"
    assert ROUTES.parse_subject(value) == (kind, "saga-1")


@pytest.mark.parametrize(
    "value", ["saga.order.placed", "dlq.x.y.z", "saga.order.shouted.s1", "saga.points.refunded.s"]
)
def test_foreign_subjects_do_not_parse(value: str) -> None:
    assert ROUTES.parse_subject(value) is None


def test_each_kind_reads_back_as_its_role_and_step() -> None:
    assert ROUTES.meaning("payment.refunded") == Meaning(Role.COMPENSATED, C)
    assert ROUTES.meaning("points.skipped") == Meaning(Role.SKIPPED, D)
    assert ROUTES.meaning(PLACED) == Meaning(Role.PLACED)
    assert ROUTES.meaning("order.refused") is None  # nothing after the pivot refuses


def test_event_ids_are_deterministic_so_a_repeat_is_a_duplicate() -> None:
    assert event_id("s1", "payment.charged") == event_id("s1", "payment.charged")
    assert event_id("s1", "payment.charged") != event_id("s2", "payment.charged")


def test_following_event_carries_the_order_policy_definition_and_trail() -> None:
    policy = SagaPolicy(deadline_s=3)
    start = placed("s1", ORDER, policy, 100.0, ORDERS_V1.ref)

    charged = start.follow(ROUTES.done(C), trail=(R, C), step=C)

    assert (charged.order, charged.policy, charged.definition) == (ORDER, policy, ORDERS_V1.ref)
    assert charged.event_id == "s1:payment.charged"
    assert charged.trail == (R, C)
    assert charged.deadline_at == 103.0


def test_a_step_is_triggered_by_the_previous_steps_done_or_skipped() -> None:
    assert ROUTES.triggers(R) == (PLACED,)
    assert ROUTES.triggers(S) == ("points.deducted", "points.skipped")
    assert ROUTES.starts("points.skipped") == S
    assert ROUTES.starts("order.completed") is None


def test_compensation_passes_to_the_previous_step_that_acted() -> None:
    assert ROUTES.previous_actor((R, C, D), S) == D
    assert ROUTES.previous_actor((R, C), S) == C  # points did not act: the chain jumps it
    assert ROUTES.previous_actor((R, C), C) == R
    assert ROUTES.previous_actor((R,), R) is None


def test_handbacks_reach_only_services_that_can_be_the_previous_actor() -> None:
    assert set(ROUTES.handback_sources(R)) == {
        "payment.refunded",
        "payment.compensation_failed",
        "payment.refused",
    }
    assert "shipping.cancelled" in ROUTES.handback_sources(C)  # via skipped points
    assert ROUTES.handback_sources(S) == ()


@pytest.mark.parametrize("step", [R, C, D, S])
def test_a_compensatable_steps_table_holds_trigger_failure_handbacks_cancel_and_retry(
    step: str,
) -> None:
    table = set(reactions_for(SAGA.service_of(step), ROUTES))

    expected = {
        *ROUTES.triggers(step),
        ROUTES.failed(step),
        *ROUTES.handback_sources(step),
        CANCEL_REQUESTED,
        ROUTES.retry_compensation(step),
    }
    assert table == expected


def test_a_step_after_the_pivot_reacts_to_its_trigger_and_an_operator_s_retry_only() -> None:
    assert kinds_for(ServiceName.ORDERS, ROUTES) == ("shipping.created", "order.retry_step")
    assert ROUTES.meaning("order.retry_step") == Meaning(Role.RETRY_STEP, LAST)
    assert ROUTES.starts("order.retry_step") is None


def test_consumers_filter_on_exactly_the_events_their_service_reacts_to() -> None:
    settings = ChoreographySettings(consumer_suffix="-t", ack_wait_s=1.5, max_deliver=50)

    for service in SAGA.services:
        config = settings.participant_spec(service, ROUTES).config()
        assert config.durable_name == f"{service}-t"
        assert config.filter_subjects == [pattern(k) for k in kinds_for(service, ROUTES)]
        assert config.ack_policy is not None and config.ack_policy.value == "explicit"
        assert (config.max_deliver, config.ack_wait) == (50, 1.5)
        assert config.max_ack_pending and config.max_ack_pending > 0
    assert settings.tracker_spec().filter_subjects == ("saga.>",)
