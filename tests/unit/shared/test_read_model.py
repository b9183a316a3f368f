"""An order is found by the id it was given, whether held as is or with a run's tag."""

from __future__ import annotations

import pytest

from shared.read_model import is_order


@pytest.mark.parametrize(
    ("held", "given"),
    [("ship-1", "ship-1"), ("ship-1-3fa2b1c4", "ship-1"), ("my_order-00000000", "my_order")],
)
def test_an_order_held_as_given_or_with_a_run_tag_is_that_order(held: str, given: str) -> None:
    assert is_order(held, given)


@pytest.mark.parametrize(
    ("held", "given"),
    [
        ("ship-10-3fa2b1c4", "ship-1"),
        ("ship-1-3FA2B1C4", "ship-1"),
        ("ship-1-3fa2b1c", "ship-1"),
        ("ship-1-extra-3fa2b1c4", "ship-1"),
        ("Ship-1-3fa2b1c4", "ship-1"),
    ],
)
def test_another_order_or_a_tag_that_is_not_a_run_s_is_not_that_order(
    held: str, given: str
) -> None:
    assert not is_order(held, given)
