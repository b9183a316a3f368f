"""Net business state, the expected state of a scenario, and the conservation invariants.

Rows may legitimately differ between the variants (a charge refunded vs. a charge refused by
its tombstone); what must not differ is the net effect, so comparisons use ``NetState``. The
order saga's five services have fixed invariants; a service a definition adds contributes its
own part of the state and its ``<name>_conserved`` invariant (`shared.services.StatePart`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from shared.contracts import (
    BusinessState,
    OrderRequest,
    Phase,
    ReasonId,
    SagaOutcome,
    SagaStatus,
    StepName,
    StepStatus,
)
from shared.definition import SagaDefinition
from shared.saga import SagaSpec
from shared.seed import SeedData

DONE = StepStatus.DONE


class NetState(BaseModel):
    """What each order left behind, keyed by order id so two runs compare directly."""

    model_config = ConfigDict(frozen=True)

    stock: dict[str, int]
    reserved: dict[str, dict[str, int]]
    net_charged: dict[str, int]
    points: dict[str, int]
    shipped: list[str]
    orders: dict[str, str]
    extra: dict[str, dict[str, int]] = {}
    """The parts of the state the definition's other services contribute, by name."""

    def aggregate(self) -> dict[str, object]:
        """The order-independent view used for races, where which order wins is timing."""
        return {
            "stock": self.stock,
            "reserved_units": sum(sum(lines.values()) for lines in self.reserved.values()),
            "net_charged_total": sum(self.net_charged.values()),
            "points": self.points,
            "shipped": len(self.shipped),
            "orders": dict(sorted(Counter(self.orders.values()).items())),
            "extra": self.extra,
        }


def net(state: BusinessState) -> NetState:
    order_of = {record.saga_id: record.order_id for record in state.orders}
    return NetState(
        stock=state.stock,
        reserved={order_of.get(s, s): lines for s, lines in state.reserved.items()},
        net_charged={
            order_of.get(c.saga_id, c.saga_id): c.amount_cents - c.refunded_cents
            for c in state.charges
            if c.amount_cents != c.refunded_cents
        },
        points=state.points,
        shipped=sorted(
            order_of.get(s.saga_id, s.saga_id) for s in state.shipments if s.status == "created"
        ),
        orders={r.order_id: _status(r.status, r.reason) for r in state.orders},
        extra=state.extra,
    )


def _status(status: SagaStatus, reason: ReasonId | None) -> str:
    return f"{status.value}/{reason}" if reason else status.value


@dataclass(frozen=True)
class Effects:
    """Which forward effects of an order remain at the end of its saga."""

    order: OrderRequest
    remains: frozenset[str]

    @classmethod
    def of(cls, order: OrderRequest, outcome: SagaOutcome, spec: SagaSpec) -> Effects:
        """A forward step's effect remains when it is done and its compensation did not undo it.

        Read from the steps, not the status: a saga waiting for an operator past the pivot
        keeps everything, one whose refund failed keeps only the charge. A COMPLETED saga
        keeps everything whatever its live view still shows of the earlier steps.
        """
        everything = set(spec.forward_steps)
        remains = everything if completed(outcome) else _remaining(outcome, spec)
        return cls(order, frozenset(remains))

    @property
    def reserved(self) -> bool:
        return StepName.RESERVE_INVENTORY in self.remains

    @property
    def charged(self) -> bool:
        return StepName.CHARGE_PAYMENT in self.remains

    @property
    def deducted(self) -> bool:
        return StepName.DEDUCT_POINTS in self.remains

    @property
    def shipped(self) -> bool:
        return StepName.CREATE_SHIPMENT in self.remains


@dataclass(frozen=True)
class Settled:
    """All the invariants read of one ended saga: its order, how it ended, which of its
    forward effects remain (a caller that keeps many sagas can keep just this)."""

    effects: Effects
    status: SagaStatus
    reason: ReasonId | None

    @classmethod
    def of(cls, order: OrderRequest, outcome: SagaOutcome, spec: SagaSpec) -> Settled:
        return cls(Effects.of(order, outcome, spec), outcome.status, outcome.reason)

    @property
    def order(self) -> OrderRequest:
        return self.effects.order


def completed(outcome: SagaOutcome) -> bool:
    return outcome.status is SagaStatus.COMPLETED


def _remaining(outcome: SagaOutcome, spec: SagaSpec) -> set[str]:
    done = {s.step for s in outcome.steps if s.phase is Phase.FORWARD and s.status is DONE}
    undone = {
        spec.forward_of(s.step)
        for s in outcome.steps
        if s.phase is Phase.COMPENSATE and s.status is DONE
    }
    return done - undone


def expected_net(
    definition: SagaDefinition, seed: SeedData, sagas: list[tuple[OrderRequest, SagaOutcome]]
) -> NetState:
    """The net state a correct run must leave, from the seed and each saga's outcome."""
    return expected_settled(definition, seed, settled_of(definition, sagas))


def settled_of(
    definition: SagaDefinition, sagas: list[tuple[OrderRequest, SagaOutcome]]
) -> list[Settled]:
    return [Settled.of(order, outcome, definition.spec) for order, outcome in sagas]


def expected_settled(
    definition: SagaDefinition, seed: SeedData, sagas: Sequence[Settled]
) -> NetState:
    """The net state a correct run must leave, from the seed and what each saga settled."""
    stock = {product_id: product.stock for product_id, product in seed.products.items()}
    points = dict(seed.points)
    reserved: dict[str, dict[str, int]] = {}
    charged: dict[str, int] = {}
    shipped: list[str] = []
    for effects in (saga.effects for saga in sagas):
        order = effects.order
        if effects.reserved:
            reserved[order.order_id] = {i.product_id: i.quantity for i in order.items}
            for item in order.items:
                stock[item.product_id] -= item.quantity
        if effects.charged:
            charged[order.order_id] = order.total_cents
        if effects.deducted:
            points[order.customer_id] -= order.points_to_use
        if effects.shipped:
            shipped.append(order.order_id)
    return NetState(
        stock=dict(sorted(stock.items())),
        reserved=reserved,
        net_charged=charged,
        points=dict(sorted(points.items())),
        shipped=sorted(shipped),
        orders={s.order.order_id: _status(s.status, s.reason) for s in sagas},
        extra={
            part.name: part.expected(
                list(seed.points), [(s.order, s.effects.remains) for s in sagas]
            )
            for part in definition.state_parts.values()
        },
    )


def check_invariants(
    definition: SagaDefinition,
    seed: SeedData,
    state: BusinessState,
    sagas: list[tuple[OrderRequest, SagaOutcome]],
) -> dict[str, bool]:
    """The conservation checks every run must pass, by name (the definition's services add
    theirs)."""
    return check_settled(definition, seed, state, settled_of(definition, sagas))


def check_settled(
    definition: SagaDefinition, seed: SeedData, state: BusinessState, sagas: Sequence[Settled]
) -> dict[str, bool]:
    """`check_invariants` from what each saga settled rather than its whole outcome."""
    actual = net(state)
    expected = expected_settled(definition, seed, sagas)
    per_saga_charges = Counter(charge.saga_id for charge in state.charges)
    per_order_charges = Counter(_order_of(state, charge.saga_id) for charge in state.charges)
    totals = {s.order.order_id: s.order.total_cents for s in sagas}
    records = {record.order_id: record.status for record in state.orders}
    return {
        "stock_conserved": actual.stock == expected.stock
        and actual.reserved == expected.reserved
        and all(units >= 0 for units in actual.stock.values()),
        "money_conserved": sum(actual.net_charged.values()) == sum(expected.net_charged.values()),
        "points_conserved": actual.points == expected.points,
        "no_double_charge": all(count == 1 for count in per_saga_charges.values())
        and all(count == 1 for count in per_order_charges.values())
        and all(
            charge.amount_cents == totals.get(_order_of(state, charge.saga_id), -1)
            for charge in state.charges
        ),
        "shipments_match_outcomes": actual.shipped == expected.shipped,
        "every_saga_settled": all(s.status.terminal for s in sagas)
        and all(records.get(s.order.order_id) is s.status for s in sagas),
        **{
            f"{part.name}_conserved": actual.extra.get(part.name) == expected.extra[part.name]
            for part in definition.state_parts.values()
        },
    }


def _order_of(state: BusinessState, saga_id: str) -> str:
    return next((r.order_id for r in state.orders if r.saga_id == saga_id), saga_id)
