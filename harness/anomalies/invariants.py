"""The anomalies found from the state a run left, each by a named invariant (no history read).

Each invariant looks at the business state at the end, the orders, and the outcome each saga
reported when it settled (what the customer was told): a saga's later effects — a step that
committed after its saga settled — count against it, not for it.

- ``stock_balanced``: per product, stock on the shelf plus units still reserved equals the
  seed (a lost update breaks it; a leaked reservation does not);
- ``refusals_serializable``: a saga refused for insufficient points would be refused in some
  serial order of the sagas: the customer's seed balance minus the points other sagas keep
  is short of what it asked (a refusal on points given back later breaks it);
- ``charge_matches_order``: every charge that stays is its order's total;
- ``end_as_reported``: every order's record says the end its saga reported;
- ``compensated_leaves_nothing``: a saga that reported COMPENSATED keeps no reservation,
  charge or shipment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.anomalies.kinds import Anomaly, Finding
from harness.compare.invariants import Effects
from shared.contracts import (
    BusinessState,
    OrderRequest,
    Reason,
    SagaOutcome,
    SagaStatus,
    StepName,
    StepStatus,
)
from shared.saga import SagaSpec
from shared.seed import SeedData


@dataclass(frozen=True)
class Settled:
    """A saga as the lab saw it: its id, its order and the outcome it reported."""

    saga_id: str
    order: OrderRequest
    outcome: SagaOutcome


def violations(
    seed: SeedData, state: BusinessState, sagas: Sequence[Settled], spec: SagaSpec
) -> list[Finding]:
    """Every broken invariant, as the anomaly it reveals (sorted like the checker's)."""
    found = [
        *stock_balanced(seed, state, sagas),
        *refusals_serializable(seed, sagas, spec),
        *charge_matches_order(state, sagas),
        *end_as_reported(state, sagas),
        *compensated_leaves_nothing(state, sagas),
    ]
    return sorted(set(found), key=lambda f: (f.anomaly, f.sagas, f.note))


def stock_balanced(seed: SeedData, state: BusinessState, sagas: Sequence[Settled]) -> list[Finding]:
    found = []
    for product, listed in seed.products.items():
        held = sum(lines.get(product, 0) for lines in state.reserved.values())
        shelf = state.stock.get(product, 0)
        if shelf + held != listed.stock:
            involved = {
                s.saga_id for s in sagas if any(i.product_id == product for i in s.order.items)
            }
            note = f"{product}: {shelf} on the shelf + {held} reserved != {listed.stock}"
            found.append(Finding.of(Anomaly.LOST_UPDATE, involved, note))
    return found


def refusals_serializable(
    seed: SeedData, sagas: Sequence[Settled], spec: SagaSpec
) -> list[Finding]:
    found = []
    for refused in sagas:
        if refused.outcome.reason != Reason.INSUFFICIENT_POINTS:
            continue
        customer = refused.order.customer_id
        others = [s for s in sagas if s.order.customer_id == customer and s is not refused]
        kept = sum(
            s.order.points_to_use for s in others if Effects.of(s.order, s.outcome, spec).deducted
        )
        balance = seed.points.get(customer, 0) - kept
        if balance >= refused.order.points_to_use:
            touched = {
                s.saga_id
                for s in others
                if _deducted_once(s.outcome) and not Effects.of(s.order, s.outcome, spec).deducted
            }
            note = f"{refused.saga_id} refused, yet {customer} keeps {balance} points"
            found.append(Finding.of(Anomaly.DIRTY_READ, {refused.saga_id, *touched}, note))
    return found


def _deducted_once(outcome: SagaOutcome) -> bool:
    return any(
        s.step == StepName.DEDUCT_POINTS and s.status is StepStatus.DONE for s in outcome.steps
    )


def charge_matches_order(state: BusinessState, sagas: Sequence[Settled]) -> list[Finding]:
    totals = {s.saga_id: s.order.total_cents for s in sagas}
    return [
        Finding.of(
            Anomaly.FUZZY_READ,
            {charge.saga_id},
            f"{charge.saga_id} charged {charge.amount_cents}, its order {totals[charge.saga_id]}",
        )
        for charge in state.charges
        if charge.saga_id in totals
        and charge.amount_cents > charge.refunded_cents
        and charge.amount_cents != totals[charge.saga_id]
    ]


def end_as_reported(state: BusinessState, sagas: Sequence[Settled]) -> list[Finding]:
    records = {record.saga_id: record.status for record in state.orders}
    return [
        Finding.of(
            Anomaly.CANCEL_OVERWRITTEN,
            {s.saga_id},
            f"{s.saga_id} reported {s.outcome.status.value}, its order says "
            f"{records[s.saga_id].value}",
        )
        for s in sagas
        if s.saga_id in records and records[s.saga_id] is not s.outcome.status
    ]


def compensated_leaves_nothing(state: BusinessState, sagas: Sequence[Settled]) -> list[Finding]:
    charged = {c.saga_id for c in state.charges if c.amount_cents > c.refunded_cents}
    shipped = {s.saga_id for s in state.shipments if s.status == "created"}
    found = []
    for saga in sagas:
        if saga.outcome.status is not SagaStatus.COMPENSATED:
            continue
        kept = [
            what
            for what, holds in (
                ("a reservation", saga.saga_id in state.reserved),
                ("a charge", saga.saga_id in charged),
                ("a shipment", saga.saga_id in shipped),
            )
            if holds
        ]
        if kept:
            note = f"{saga.saga_id} reported COMPENSATED but keeps {', '.join(kept)}"
            found.append(Finding.of(Anomaly.EARLY_COMPENSATION, {saga.saga_id}, note))
    return found
