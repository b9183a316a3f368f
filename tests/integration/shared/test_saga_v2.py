"""Version 2 of the order saga on a real store: the fraud check, the charge in money, and a
refund by version 2 of a charge version 1 recorded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.contracts import LineItem, OrderRequest, ShippingAddress, StepName, StepRequest
from shared.contracts import StepStatus as S
from shared.definitions import ORDERS_V1, definition_named, definition_of
from shared.errors import BusinessFailure
from shared.seed import seed
from shared.services import Domain
from shared.services.audit import reported
from shared.services.fraud import CHECK, SUSPECTED, VOID, Clearances, FraudService
from shared.services.payment_v2 import cents_of, money, upcast_amount
from shared.store import sqlite_stores

V2 = definition_named("v2")
US = ShippingAddress(name="A", street="1 Main St", city="X", postal_code="1", country="US")


def order(
    order_id: str, quantity: int = 2, product: str = "widget", price: int = 1999
) -> OrderRequest:
    return OrderRequest(
        order_id=order_id,
        customer_id="alice",
        items=[LineItem(product_id=product, quantity=quantity, unit_price_cents=price)],
        payment_method="card-4242",
        points_to_use=0,
        shipping_address=US,
    )


def request(o: OrderRequest) -> StepRequest:
    return StepRequest(saga_id=o.order_id, order=o)


@pytest.fixture
async def domains(tmp_path: Path) -> AsyncIterator[tuple[Domain, Domain]]:
    """Version 1's and version 2's services over the same stores (an upgrade in place)."""
    v1 = await Domain(sqlite_stores(tmp_path), ORDERS_V1).open()
    await seed(v1)
    v2 = await Domain(sqlite_stores(tmp_path), V2).open()
    yield v1, v2
    await v2.close()
    await v1.close()


def test_version_1_keeps_its_digest_so_its_recorded_sagas_are_still_recognised() -> None:
    assert ORDERS_V1.ref.digest == "58da9646bbfbdd78"
    assert V2.understands(ORDERS_V1.ref) and not ORDERS_V1.understands(V2.ref)
    assert definition_of(ORDERS_V1.ref) is ORDERS_V1 and definition_of(V2.ref) is V2


def test_version_2_checks_for_fraud_after_the_reservation_and_before_the_charge() -> None:
    steps = V2.spec.forward_steps
    assert steps.index(CHECK) == steps.index(StepName.RESERVE_INVENTORY) + 1
    assert steps.index(StepName.CHARGE_PAYMENT) == steps.index(CHECK) + 1
    assert (
        V2.spec.compensation_of(CHECK) == VOID and V2.spec.step(CHECK).failure_reason == SUSPECTED
    )


async def test_an_order_over_the_limit_is_refused_as_suspected_fraud(
    domains: tuple[Domain, Domain],
) -> None:
    _, v2 = domains
    big = order("big", quantity=17, product="gizmo", price=12500)

    with pytest.raises(BusinessFailure) as refused:
        await v2.handler(CHECK)(request(big))

    assert refused.value.reason == SUSPECTED and "over the limit 2000.00" in refused.value.message
    assert await Clearances().snapshot(v2.services["fraud"]) == {}


async def test_a_blocked_customer_is_refused_and_a_voided_clearance_no_longer_stands(
    domains: tuple[Domain, Domain],
) -> None:
    _, v2 = domains
    fraud = v2.services["fraud"]
    assert isinstance(fraud, FraudService)
    cleared = order("cleared")
    done = await v2.handler(CHECK)(request(cleared))
    assert done.status is S.DONE
    assert await Clearances().snapshot(fraud) == {"alice": 1}

    await fraud.block("alice", "chargebacks")
    with pytest.raises(BusinessFailure) as refused:
        await v2.handler(CHECK)(request(order("later")))
    voided = await v2.handler(VOID)(request(cleared))

    assert "customer alice is blocked (chargebacks)" in refused.value.message
    assert voided.status is S.DONE
    assert await Clearances().snapshot(fraud) == {}


async def test_version_2_reports_the_charge_in_money_and_refunds_a_version_1_charge(
    domains: tuple[Domain, Domain],
) -> None:
    v1, v2 = domains
    old, new = order("old"), order("new")
    charged_by_v1 = await v1.handler(StepName.CHARGE_PAYMENT)(request(old))
    charged_by_v2 = await v2.handler(StepName.CHARGE_PAYMENT)(request(new))

    refunds = [await v2.handler(StepName.REFUND_PAYMENT)(request(o)) for o in (old, new)]

    # What each reports to its saga (the detail without the audit, which is the harness's).
    assert reported(charged_by_v1.detail) == {"amount_cents": 3998}
    assert reported(charged_by_v2.detail) == {"amount": {"value": "39.98", "currency": "USD"}}
    assert [reported(r.detail) for r in refunds] == [{"refunded_cents": 3998}] * 2
    assert {c.saga_id: c.refunded_cents for c in await v2.payment.charges()} == {
        "new": 3998,
        "old": 3998,
    }


async def test_version_1_cannot_refund_a_charge_version_2_recorded(
    domains: tuple[Domain, Domain],
) -> None:
    """The service's own store crosses versions too: a v1 process reading v2's shape fails."""
    v1, v2 = domains
    new = order("new")
    await v2.handler(StepName.CHARGE_PAYMENT)(request(new))

    with pytest.raises(KeyError, match="amount_cents"):
        await v1.handler(StepName.REFUND_PAYMENT)(request(new))


def test_money_keeps_cents_exact_both_ways() -> None:
    assert money(3998) == {"value": "39.98", "currency": "USD"}
    assert money(5) == {"value": "0.05", "currency": "USD"}
    assert [cents_of(money(c)) for c in (0, 5, 3998, 250000)] == [0, 5, 3998, 250000]
    assert upcast_amount({"amount_cents": 1999}) == {"amount": money(1999)}
    with pytest.raises(ValueError, match="not in USD"):
        cents_of({"value": "1.00", "currency": "EUR"})
