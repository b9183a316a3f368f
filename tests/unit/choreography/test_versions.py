"""How a process of one release reads an event of another, per event versioning setting."""

from __future__ import annotations

import pytest

from choreography.bus import Delivery, Poison, Retry
from choreography.events import Event, placed
from choreography.versions import NotOurs, Reader
from shared.contracts import LineItem, OrderRequest, SagaPolicy, ShippingAddress
from shared.definitions import ORDERS_V1, definition_named

V2 = definition_named("v2")
ORDER = OrderRequest(
    order_id="o-1",
    customer_id="alice",
    items=[LineItem(product_id="widget", quantity=2, unit_price_cents=1999)],
    payment_method="card-4242",
    points_to_use=0,
    shipping_address=ShippingAddress(
        name="A", street="1 Main St", city="X", postal_code="1", country="US"
    ),
)


def charged(definition_ref: object, envelope: int) -> Event:
    start = placed("s-1", ORDER, SagaPolicy(), 1.0, definition_ref, envelope)  # type: ignore[arg-type]
    detail = {"amount": {"value": "39.98", "currency": "USD"}} if envelope == 2 else {}
    return start.follow("payment.charged", step="charge_payment", detail=detail)


def delivered(event: Event) -> Delivery:
    return Delivery(
        subject=event.subject,
        data=event.model_dump_json().encode(),
        headers={},
        num_delivered=1,
        stream_seq=1,
    )


def test_release_1_writes_no_detail_and_no_version() -> None:
    body = charged(ORDERS_V1.ref, 1).model_dump_json()
    assert '"detail"' not in body and '"envelope"' not in body
    assert '"envelope":2' in charged(ORDERS_V1.ref, 2).model_dump_json()


def test_a_strict_release_1_process_dead_letters_a_v1_saga_event_a_v2_process_wrote() -> None:
    with pytest.raises(Poison, match="envelope 2, this process reads envelope 1"):
        Reader(ORDERS_V1, "strict").decode(delivered(charged(ORDERS_V1.ref, 2)))


def test_a_tolerant_release_1_process_reads_what_it_knows_of_envelope_2() -> None:
    event = Reader(ORDERS_V1, "tolerant").decode(delivered(charged(ORDERS_V1.ref, 2)))
    assert event.envelope == 1 and event.detail == {}
    assert '"detail"' not in event.model_dump_json()


def test_a_tolerant_process_hands_back_a_saga_of_a_definition_it_does_not_hold() -> None:
    with pytest.raises(Retry, match="made by saga definition orders v2"):
        Reader(ORDERS_V1, "tolerant").decode(delivered(charged(V2.ref, 2)))


def test_a_strict_process_dead_letters_a_saga_of_another_definition_naming_both() -> None:
    with pytest.raises(Poison, match=r"made by saga definition orders v2 .* holds orders v1"):
        Reader(ORDERS_V1, "strict").decode(delivered(charged(V2.ref, 2)))


def test_a_tolerant_v2_reader_upcasts_the_charge_to_money() -> None:
    event = Reader(V2, "stored-upcast").decode(delivered(charged(ORDERS_V1.ref, 1)))
    assert event.envelope == 2 and event.definition == ORDERS_V1.ref
    assert event.detail == {"amount": {"value": "39.98", "currency": "USD"}}


@pytest.mark.parametrize(
    ("held", "ref", "envelope"),
    [(V2, ORDERS_V1.ref, 1), (ORDERS_V1, V2.ref, 2), (ORDERS_V1, ORDERS_V1.ref, 2)],
)
def test_a_dual_publishing_group_leaves_the_other_releases_copies_unread(
    held: object, ref: object, envelope: int
) -> None:
    with pytest.raises(NotOurs):
        Reader(held, "dual-publish").decode(delivered(charged(ref, envelope)))  # type: ignore[arg-type]


def test_dual_publishing_writes_both_envelopes_and_a_group_of_its_own() -> None:
    assert Reader(V2, "dual-publish").envelopes == (1, 2)
    assert Reader(V2, "dual-publish").durable_suffix == "-r2"
    assert Reader(ORDERS_V1, "dual-publish").durable_suffix == ""
    assert Reader(V2, "tolerant").envelopes == (2,)


def test_only_tolerant_readers_understand_the_definitions_their_definition_names() -> None:
    assert [d.version for d in Reader(V2, "tolerant").understood] == ["v2", "v1"]
    assert [d.version for d in Reader(V2, "strict").understood] == ["v2"]
    assert [d.version for d in Reader(V2, "dual-publish").understood] == ["v2"]
