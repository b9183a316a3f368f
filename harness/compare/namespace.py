"""A run's own corner of a deployment: its products, customers and orders, suffixed by its tag.

A deployment is shared and long-lived, so a run never wipes it: it adds its own catalogue
and point accounts (``widget-<tag>``, ``alice-<tag>``) through the services' stores, places
orders that name them (order ids suffixed too, so an order id is placed once), and reads
back only what carries its tag, with the suffix taken off again. The same path serves the
embedded runtimes, so there is one way to run a scenario.

One order id everywhere: the report and the traces name an order by the id the scenario
gave it (``ship-1``); the services, the monitor's rows and Temporal's ``OrderId`` hold it as
``ship-1-<tag>``, which is also its saga id. Searching either by the id it was given finds
it (`shared.read_model.is_order`: the tag is 8 hex digits, `RUN_TAG`): the monitor's search
and ``/orders/ship-1``, and ``OrderId STARTS_WITH "ship-1-"`` in Temporal's list filter
(`orchestration.visibility.given_order_filter`).
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.compare.scenarios import SagaCase
from shared.contracts import (
    BusinessState,
    Charge,
    LineItem,
    OrderRecord,
    OrderRequest,
    SagaOutcome,
    Shipment,
)
from shared.seed import SeedData
from shared.services import Domain


@dataclass(frozen=True)
class Namespace:
    """Ids suffixed with ``-<tag>``; everything else about an order stays the same."""

    tag: str

    def id(self, plain: str) -> str:
        return f"{plain}-{self.tag}"

    def owns(self, value: str) -> bool:
        return value.endswith(f"-{self.tag}")

    def plain(self, value: str) -> str:
        return value.removesuffix(f"-{self.tag}")

    def saga_id(self, order_id: str) -> str:
        """The saga of an order of this run (its namespaced order id: one saga per order)."""
        return self.id(order_id)

    def order(self, order: OrderRequest) -> OrderRequest:
        """The order as this run places it: its ids, its customer, its products."""
        items = [
            LineItem(
                product_id=self.id(item.product_id),
                quantity=item.quantity,
                unit_price_cents=item.unit_price_cents,
            )
            for item in order.items
        ]
        return order.model_copy(
            update={
                "order_id": self.id(order.order_id),
                "customer_id": self.id(order.customer_id),
                "items": items,
            }
        )

    def case(self, case: SagaCase) -> SagaCase:
        return SagaCase(self.order(case.order), case.faults, case.expected, case.cancel_during)

    def outcome(self, outcome: SagaOutcome) -> SagaOutcome:
        """The outcome with the order id as the scenario names it."""
        return outcome.model_copy(update={"order_id": self.plain(outcome.order_id)})

    def restrict(self, state: BusinessState) -> BusinessState:
        """This run's part of a deployment's state, in the scenario's own ids."""
        return BusinessState(
            stock={self.plain(p): n for p, n in state.stock.items() if self.owns(p)},
            reserved={
                saga: {self.plain(p): n for p, n in lines.items()}
                for saga, lines in state.reserved.items()
                if self.owns(saga)
            },
            charges=[
                Charge(
                    saga_id=c.saga_id,
                    customer_id=self.plain(c.customer_id),
                    amount_cents=c.amount_cents,
                    refunded_cents=c.refunded_cents,
                )
                for c in state.charges
                if self.owns(c.saga_id)
            ],
            points={self.plain(c): n for c, n in state.points.items() if self.owns(c)},
            shipments=[
                Shipment(saga_id=s.saga_id, order_id=self.plain(s.order_id), status=s.status)
                for s in state.shipments
                if self.owns(s.saga_id)
            ],
            orders=[
                OrderRecord(
                    saga_id=r.saga_id,
                    order_id=self.plain(r.order_id),
                    total_cents=r.total_cents,
                    status=r.status,
                    reason=r.reason,
                )
                for r in state.orders
                if self.owns(r.saga_id)
            ],
            extra={
                name: {self.plain(key): n for key, n in part.items() if self.owns(key)}
                for name, part in state.extra.items()
            },
        )


async def seed_namespace(domain: Domain, namespace: Namespace, data: SeedData) -> None:
    """Add this run's catalogue and accounts beside whatever the deployment holds."""
    await domain.inventory.stock_up(
        {
            namespace.id(pid): (product.name, product.price_cents, product.stock)
            for pid, product in data.products.items()
        }
    )
    await domain.points.open_accounts(
        {namespace.id(customer): balance for customer, balance in data.points.items()}
    )
    customers = [namespace.id(customer) for customer in data.points]
    for name, part in domain.definition.state_parts.items():
        await part.open_accounts(domain.services[name], customers)
