"""Scenario descriptions say what was injected into which step, and when."""

from __future__ import annotations

from harness.compare.scenarios import get
from harness.report.describe import describe


def test_a_hang_says_which_step_hangs_and_the_timeout_and_deadline_that_end_it() -> None:
    text = describe(get("hang_past_deadline"))

    assert "create_shipment hangs on every attempt" in text
    assert "Attempt timeout 1 s, deadline 4 s" in text


def test_a_cancel_says_when_the_customer_cancels_and_what_delays_the_step() -> None:
    text = describe(get("customer_cancel"))

    assert "create_shipment waits 1,500 ms before its service is called" in text
    assert "The customer cancels while create_shipment is in flight." in text


def test_the_seeded_mix_lists_what_its_seed_draws() -> None:
    text = describe(get("seeded_fault_mix"))

    assert text.count(";") >= 3 and "seed 7 draws:" in text
    assert "reserve_inventory fails transiently on its first 2 attempt(s)" in text


def test_the_race_says_how_many_orders_start_at_once() -> None:
    assert describe(get("race_for_last_items")).startswith("20 orders started at once")
