"""Option parsing the command line shares: a rate list for the benchmark's open model."""

from __future__ import annotations

import re

import pytest
import typer

from harness.cli.options import parse_rates


def test_rates_parse_sorted_with_decimals() -> None:
    assert parse_rates("20, 5,2.5") == (2.5, 5.0, 20.0)
    assert parse_rates(None) == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("5,abc", "'abc' is not a number"),
        ("0", "0 is not in (0, 1000]"),
        ("-3", "-3 is not in"),
        ("1e9", "1e9 is not in"),
        ("nan", "nan is not in"),
        ("5,5", "appears twice"),
        (",".join(str(r) for r in range(1, 30)), "at most 20"),
    ],
)
def test_a_bad_rate_list_names_the_item_at_fault(text: str, fragment: str) -> None:
    with pytest.raises(typer.BadParameter, match=re.escape(fragment)):
        parse_rates(text)
