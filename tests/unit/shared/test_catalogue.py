"""The catalogue and customer records decide prices and customers, not the order."""

from __future__ import annotations

import pytest

from harness.compare.scenarios import order
from shared.catalogue import Catalogue
from shared.contracts import LineItem
from shared.errors import InvalidOrder
from shared.seed import DEFAULT_SEED

CATALOGUE = Catalogue.from_seed(DEFAULT_SEED)


def test_an_order_at_catalogue_prices_from_a_known_customer_passes() -> None:
    CATALOGUE.check(order("o-1", items={"widget": 2, "gadget": 1}, points=10))


@pytest.mark.parametrize("price", [0, 1, 1_998, 2_000])
def test_a_unit_price_other_than_the_catalogues_names_the_line_and_the_expected_price(
    price: int,
) -> None:
    bad = order("o-1").model_copy(
        update={"items": [LineItem(product_id="widget", quantity=1, unit_price_cents=price)]}
    )

    with pytest.raises(InvalidOrder) as refused:
        CATALOGUE.check(bad)

    assert str(refused.value) == (
        f"items[0].unit_price_cents: {price} does not match the catalogue price 1999 of widget"
    )


def test_an_unknown_customer_is_refused_even_with_no_points_to_use() -> None:
    with pytest.raises(InvalidOrder, match=r"^customer_id: unknown customer 'mallory'"):
        CATALOGUE.check(order("o-1", customer="mallory", points=0))


def test_an_unknown_product_names_its_line() -> None:
    bad = order("o-1").model_copy(
        update={
            "items": [
                LineItem(product_id="widget", quantity=1, unit_price_cents=1_999),
                LineItem(product_id="unicorn", quantity=1, unit_price_cents=1),
            ]
        }
    )

    with pytest.raises(InvalidOrder, match=r"^items\[1\]\.product_id: unknown product 'unicorn'"):
        CATALOGUE.check(bad)
