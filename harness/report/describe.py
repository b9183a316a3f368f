"""A scenario in words: the order, what is injected into which step and when, the timings.

Read off the catalogue's own data (the order, the fault plan, the cancel's moment, the policy),
so the description cannot drift from what the run did.
"""

from __future__ import annotations

from harness.compare.scenarios import FAST, SagaCase, Scenario
from shared.contracts import OrderRequest
from shared.faults import FaultRule

EVERY = 1_000
"""A transient count this high means "on every attempt" (the budget runs out first)."""


def describe(scenario: Scenario) -> str:
    """One paragraph: the order(s), the faults and cancels, the policy's timings."""
    case = scenario.sagas[0]
    parts = [_orders(scenario)]
    if case.faults.rules:
        seeded = f"seed {case.faults.seed} draws: " if scenario.name.startswith("seeded") else ""
        parts.append("Injected: " + seeded + "; ".join(_rule(r) for r in case.faults.rules) + ".")
    cancel = _cancel(case)
    if cancel:
        parts.append(cancel)
    parts.append(_timings(scenario))
    return " ".join(parts)


def _orders(scenario: Scenario) -> str:
    count = len(scenario.sagas)
    order = _order(scenario.sagas[0].order)
    if count > 1:
        return f"{count} orders started at once, each {order}."
    return f"One order: {order}."


def _order(order: OrderRequest) -> str:
    items = ", ".join(f"{line.quantity} x {line.product_id}" for line in order.items)
    points = f", {order.points_to_use} points" if order.points_to_use else ", no points"
    card = f", card {order.payment_method}" if order.payment_method != "card-4242" else ""
    where = (
        f", to {order.shipping_address.country}" if order.shipping_address.country != "US" else ""
    )
    return f"{items}{points}{card}{where} (customer {order.customer_id})"


def _rule(rule: FaultRule) -> str:
    step = rule.step
    found = []
    if rule.transient:
        when = (
            "every attempt" if rule.transient >= EVERY else f"its first {rule.transient} attempt(s)"
        )
        found.append(f"{step} fails transiently on {when}")
    if rule.permanent:
        found.append(f"{step} refuses (a business failure)")
    if rule.delay_ms:
        found.append(f"{step} waits {rule.delay_ms:,} ms before its service is called")
    if rule.delay_after_ms:
        until = " or until the cancel has fenced it" if rule.until_cancelled else ""
        found.append(f"{step} holds its result {rule.delay_after_ms:,} ms after committing{until}")
    if rule.hang:
        found.append(f"{step} hangs on every attempt (never answers)")
    if rule.duplicate:
        found.append(f"{step}'s acknowledgement is lost once, so it is delivered again")
    if rule.crash is not None:
        found.append(f"the process running {step} dies {str(rule.crash).replace('_', ' ')}")
    text = ", and ".join(found) or f"{step}: nothing"
    return text + (f" (with probability {rule.probability:g})" if rule.probability < 1 else "")


def _cancel(case: SagaCase) -> str | None:
    if case.cancel_during is not None:
        return f"The customer cancels while {case.cancel_during} is in flight."
    if case.cancel_after_commit is not None:
        return (
            f"The customer cancels once {case.cancel_after_commit} has committed in its service,"
            " before it is reported."
        )
    return None


def _timings(scenario: Scenario) -> str:
    policy = scenario.policy
    note = "" if policy == FAST else " (shorter than the catalogue's usual)"
    return (
        f"Attempt timeout {policy.attempt_timeout_s:g} s, deadline {policy.deadline_s:g} s{note},"
        f" backoff from {policy.initial_backoff_s * 1000:g} ms, {policy.compensation_attempts}"
        " attempts per compensation."
    )
