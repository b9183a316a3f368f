"""Payment, version 2: the charge reports its amount as money (value and currency), not cents.

That detail is what the step log keeps, what the orchestration's activity returns and what
the choreography's ``payment.charged`` event carries from version 2 on. A refund reads the
charge it undoes in either shape: a saga charged by version 1 is refunded by version 2 after
an upgrade (`upcast_amount`), since the service's own store outlives the release.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from shared.services import ServiceDef
from shared.services.payment import MIGRATIONS, PaymentService

CURRENCY = "USD"
"""The shop's one currency: the catalogue's prices are US cents."""


def money(cents: int, currency: str = CURRENCY) -> dict[str, str]:
    """An amount as version 2 writes it: a decimal string (never a float) and its currency."""
    return {"value": str(Decimal(cents).scaleb(-2)), "currency": currency}


def cents_of(amount: dict[str, Any]) -> int:
    """The cents of a money amount (``{"value": "39.98", "currency": "USD"}`` -> 3998)."""
    if amount.get("currency") != CURRENCY:
        raise ValueError(f"amount {amount!r} is not in {CURRENCY}")
    return int(Decimal(str(amount["value"])).scaleb(2))


def upcast_amount(detail: dict[str, Any]) -> dict[str, Any]:
    """A charge's detail in version 2's shape, whichever version wrote it."""
    if "amount" in detail:
        return detail
    rest = {k: v for k, v in detail.items() if k != "amount_cents"}
    return {**rest, "amount": money(int(detail["amount_cents"]))}


class PaymentServiceV2(PaymentService):
    """The same gateway; only the shape of what a charge reports changed."""

    def charged(self, cents: int) -> dict[str, Any]:
        return {"amount": money(cents)}

    def charged_cents(self, detail: dict[str, Any]) -> int:
        return cents_of(upcast_amount(detail)["amount"])


SERVICE = ServiceDef(PaymentServiceV2, MIGRATIONS)
"""Version 2's payment service: same tables, the charge's detail in money."""
