"""An order file holds the order and, for the harness only, the faults it injects."""

from __future__ import annotations

import json

import pytest

from harness.compare.order_file import read_order_file
from shared.contracts import StepName
from shared.definitions import ORDERS_V1
from shared.errors import InvalidOrder

ORDER = {
    "order_id": "o-1",
    "customer_id": "alice",
    "items": [{"product_id": "widget", "quantity": 1, "unit_price_cents": 1999}],
    "payment_method": "card-4242",
    "shipping_address": {
        "name": "A",
        "street": "1 Main St",
        "city": "X",
        "postal_code": "1",
        "country": "US",
    },
}


def test_faults_are_taken_out_of_the_order_file_for_the_harness() -> None:
    faults = {"seed": 3, "rules": [{"step": "charge_payment", "phase": "compensate"}]}
    parsed = read_order_file(json.dumps({**ORDER, "faults": faults}), ORDERS_V1)

    assert parsed.order.order_id == "o-1"
    assert parsed.faults.seed == 3
    assert parsed.faults.rules[0].step is StepName.REFUND_PAYMENT


def test_an_unknown_fault_step_is_named_with_the_steps_of_the_definition() -> None:
    text = json.dumps({**ORDER, "faults": {"rules": [{"step": "teleport"}]}})
    with pytest.raises(InvalidOrder, match=r"^faults\.rules\[0\]\.step: unknown step"):
        read_order_file(text, ORDERS_V1)


def test_a_malformed_fault_rule_names_its_field() -> None:
    text = json.dumps({**ORDER, "faults": {"rules": [{"step": "charge_payment", "transient": -1}]}})
    with pytest.raises(InvalidOrder, match=r"^faults\.rules\[0\]\.transient: "):
        read_order_file(text, ORDERS_V1)
