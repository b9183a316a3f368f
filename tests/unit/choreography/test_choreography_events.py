"""Subjects, event ids, the envelope and the participants' reaction tables."""

from __future__ import annotations

import pytest

from choreography.events import (
    COMPENSATED,
    FAILED,
    TRIGGER,
    Kind,
    event_id,
    handback_sources,
    parse_subject,
    placed,
    previous_actor,
    subject,
)
from choreography.participants import KINDS, inventory, payment, points, shipping
from choreography.runtime import ChoreographySettings
from shared.contracts import (
    LineItem,
    OrderRequest,
    SagaPolicy,
    ServiceName,
    ShippingAddress,
    StepName,
)
from shared.faults import FaultPlan, FaultRule

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
R, C, D, S = (
    StepName.RESERVE_INVENTORY,
    StepName.CHARGE_PAYMENT,
    StepName.DEDUCT_POINTS,
    StepName.CREATE_SHIPMENT,
)


@pytest.mark.parametrize("kind", list(Kind))
def test_every_subject_names_service_event_and_saga_and_parses_back(kind: Kind) -> None:
    value = subject(kind, "saga-1")

    assert value == f"saga.{kind.value}.saga-1"
    assert parse_subject(value) == (kind, "saga-1")


@pytest.mark.parametrize("value", ["saga.order.placed", "dlq.x.y.z", "saga.order.shouted.s1"])
def test_foreign_subjects_do_not_parse(value: str) -> None:
    assert parse_subject(value) is None


def test_event_ids_are_deterministic_so_a_repeat_is_a_duplicate() -> None:
    assert event_id("s1", Kind.PAYMENT_CHARGED) == event_id("s1", Kind.PAYMENT_CHARGED)
    assert event_id("s1", Kind.PAYMENT_CHARGED) != event_id("s2", Kind.PAYMENT_CHARGED)


def test_following_event_carries_the_order_faults_policy_and_trail() -> None:
    faults = FaultPlan(rules=[FaultRule(step=C, transient=1)])
    policy = SagaPolicy(deadline_s=3)
    start = placed("s1", ORDER, faults, policy, started_at=100.0)

    charged = start.follow(Kind.PAYMENT_CHARGED, trail=(R, C), step=C)

    assert (charged.order, charged.faults, charged.policy) == (ORDER, faults, policy)
    assert charged.event_id == "s1:payment.charged"
    assert charged.trail == (R, C)
    assert charged.deadline_at == 103.0


def test_compensation_passes_to_the_previous_step_that_acted() -> None:
    assert previous_actor((R, C, D), S) is D
    assert previous_actor((R, C), S) is C  # points did not act: the chain jumps it
    assert previous_actor((R, C), C) is R
    assert previous_actor((R,), R) is None


def test_handbacks_reach_only_services_that_can_be_the_previous_actor() -> None:
    assert set(handback_sources(R)) == {
        Kind.PAYMENT_REFUNDED,
        Kind.PAYMENT_COMPENSATION_FAILED,
        Kind.PAYMENT_REFUSED,
    }
    assert Kind.SHIPPING_CANCELLED in handback_sources(C)  # via skipped points
    assert handback_sources(S) == ()


@pytest.mark.parametrize(
    ("module", "step"),
    [(inventory, R), (payment, C), (points, D), (shipping, S)],
)
def test_reaction_tables_hold_exactly_the_trigger_failure_handbacks_and_cancel(
    module: object, step: StepName
) -> None:
    table = set(module.REACTIONS)  # type: ignore[attr-defined]

    expected = {*TRIGGER[step], FAILED[step], *handback_sources(step), Kind.ORDER_CANCEL_REQUESTED}
    assert table == expected


def test_consumers_filter_on_exactly_the_events_their_service_reacts_to() -> None:
    settings = ChoreographySettings(consumer_suffix="-t", ack_wait_s=1.5, max_deliver=50)

    for service in ServiceName:
        config = settings.participant_spec(service).config()
        assert config.durable_name == f"{service.value}-t"
        assert config.filter_subjects == [kind.pattern for kind in KINDS[service]]
        assert config.ack_policy is not None and config.ack_policy.value == "explicit"
        assert (config.max_deliver, config.ack_wait) == (50, 1.5)
        assert config.max_ack_pending and config.max_ack_pending > 0
    assert KINDS[ServiceName.ORDERS] == (Kind.SHIPPING_CREATED,)
    assert settings.tracker_spec().filter_subjects == ("saga.>",)
    assert COMPENSATED[StepName.CANCEL_SHIPMENT] is Kind.SHIPPING_CANCELLED
