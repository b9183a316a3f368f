"""Orders are validated at the edge: every bad field gets one line naming it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.contracts import OrderRequest
from shared.errors import InvalidOrder
from shared.validation import parse_order


def valid_order(**changes: Any) -> dict[str, Any]:
    order: dict[str, Any] = {
        "order_id": "o-1",
        "customer_id": "alice",
        "items": [{"product_id": "widget", "quantity": 2, "unit_price_cents": 1999}],
        "payment_method": "card-4242",
        "points_to_use": 100,
        "shipping_address": {
            "name": "A",
            "street": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        },
    }
    order.update(changes)
    return order


def test_total_is_an_exact_integer_sum_of_lines() -> None:
    order = OrderRequest.model_validate(
        valid_order(
            items=[
                {"product_id": "widget", "quantity": 3, "unit_price_cents": 1999},
                {"product_id": "gadget", "quantity": 1, "unit_price_cents": 4950},
            ]
        )
    )
    assert order.total_cents == 3 * 1999 + 4950
    assert isinstance(order.total_cents, int)


@given(quantity=st.integers(max_value=0))
def test_zero_or_negative_quantity_is_rejected_naming_the_field(quantity: int) -> None:
    items = [{"product_id": "widget", "quantity": quantity, "unit_price_cents": 1}]
    with pytest.raises(InvalidOrder, match=r"^items\[0\]\.quantity: "):
        parse_order(json.dumps(valid_order(items=items)))


@given(points=st.integers(max_value=-1))
def test_negative_points_are_rejected_naming_the_field(points: int) -> None:
    with pytest.raises(InvalidOrder, match=r"^points_to_use: "):
        parse_order(json.dumps(valid_order(points_to_use=points)))


@given(price=st.floats(allow_nan=False, allow_infinity=False))
def test_money_given_as_a_float_is_rejected(price: float) -> None:
    items = [{"product_id": "widget", "quantity": 1, "unit_price_cents": price}]
    with pytest.raises(InvalidOrder, match=r"^items\[0\]\.unit_price_cents: "):
        parse_order(json.dumps(valid_order(items=items)))


@given(
    quantity=st.integers(min_value=1, max_value=10_000),
    price=st.integers(min_value=0, max_value=100_000_000),
    points=st.integers(min_value=0, max_value=100_000_000),
)
def test_any_well_formed_order_round_trips(quantity: int, price: int, points: int) -> None:
    items = [{"product_id": "widget", "quantity": quantity, "unit_price_cents": price}]
    parsed = parse_order(json.dumps(valid_order(items=items, points_to_use=points)))
    assert OrderRequest.model_validate_json(parsed.model_dump_json()) == parsed
    assert parsed.total_cents == quantity * price


def test_empty_items_are_rejected() -> None:
    with pytest.raises(InvalidOrder, match=r"^items: List should have at least 1 item"):
        parse_order(json.dumps(valid_order(items=[])))


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(InvalidOrder, match=r"not valid JSON \(line 1, column 2\)"):
        parse_order("{oops")


def test_unknown_field_is_named_with_a_hint() -> None:
    with pytest.raises(InvalidOrder, match=r"^pointz: is not a known field"):
        parse_order(json.dumps(valid_order(pointz=5)))


def test_missing_address_field_is_named() -> None:
    order = valid_order()
    del order["shipping_address"]["city"]
    with pytest.raises(InvalidOrder, match=r"^shipping_address\.city: is required$"):
        parse_order(json.dumps(order))


def test_a_product_listed_twice_is_rejected() -> None:
    line = {"product_id": "widget", "quantity": 1, "unit_price_cents": 1}
    with pytest.raises(InvalidOrder, match="appears twice"):
        parse_order(json.dumps(valid_order(items=[line, line])))


def test_error_messages_are_one_line() -> None:
    for bad in ("[]", "{", json.dumps(valid_order(order_id="has space"))):
        with pytest.raises(InvalidOrder) as error:
            parse_order(bad)
        assert "\n" not in str(error.value)


def test_order_ids_must_be_subject_safe() -> None:
    with pytest.raises(ValidationError):
        OrderRequest.model_validate(valid_order(order_id="a.b>c"))


def test_an_order_is_only_an_order_a_faults_field_is_refused_by_the_services_contract() -> None:
    text = json.dumps(valid_order(faults={"rules": [{"step": "charge_payment"}]}))
    with pytest.raises(InvalidOrder, match=r"^faults: is not a known field"):
        parse_order(text)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"payment_method": "card\x1b[31m"}, "payment_method"),
        ({"shipping_address": {**valid_order()["shipping_address"], "name": "A\nB"}}, "name"),
        ({"shipping_address": {**valid_order()["shipping_address"], "city": "X\x00"}}, "city"),
        ({"order_id": "o\t1"}, "order_id"),
        ({"customer_id": "alice\r"}, "customer_id"),
    ],
)
def test_ids_and_names_with_control_characters_are_invalid(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        parse_order(json.dumps(valid_order(**changes)))

    assert field in str(refused.value).split(":")[0]
