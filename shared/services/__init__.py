"""The domain composition root: five services, each with its own store, found by step name."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from shared.contracts import BusinessState, ServiceName, StepName
from shared.saga import service_of
from shared.services import inventory, orders, payment, points, shipping
from shared.services.base import Service, StepHandler, Within
from shared.services.inventory import InventoryService
from shared.services.orders import OrdersService
from shared.services.payment import PaymentService
from shared.services.points import PointsService
from shared.services.shipping import ShippingService
from shared.store import Migration, Store, StoreFactory

__all__ = ["MIGRATIONS", "Domain", "ExtraMigrations", "Service", "StepHandler", "Within"]

MIGRATIONS: dict[ServiceName, tuple[Migration, ...]] = {
    ServiceName.INVENTORY: inventory.MIGRATIONS,
    ServiceName.PAYMENT: payment.MIGRATIONS,
    ServiceName.POINTS: points.MIGRATIONS,
    ServiceName.SHIPPING: shipping.MIGRATIONS,
    ServiceName.ORDERS: orders.MIGRATIONS,
}
"""Each service's own tables (its step log included)."""

ExtraMigrations = Mapping[ServiceName, Sequence[Migration]]
"""Tables a caller adds to a service's store (the choreography's outbox, inbox, tracker ...)."""


class Domain:
    """All five services, each over a store the factory builds; nothing is opened yet.

    ``extra_migrations`` lets a variant keep its own tables in a service's store, so they
    commit in the service's transactions, under the one migration system of that store.
    """

    def __init__(
        self, stores: StoreFactory, *, extra_migrations: ExtraMigrations | None = None
    ) -> None:
        extra = extra_migrations or {}

        def build(name: ServiceName) -> Store:
            return stores(name.value, (*MIGRATIONS[name], *extra.get(name, ())))

        self.inventory = InventoryService(build(ServiceName.INVENTORY))
        self.payment = PaymentService(build(ServiceName.PAYMENT))
        self.points = PointsService(build(ServiceName.POINTS))
        self.shipping = ShippingService(build(ServiceName.SHIPPING))
        self.orders = OrdersService(build(ServiceName.ORDERS))
        self.services: dict[ServiceName, Service] = {
            ServiceName.INVENTORY: self.inventory,
            ServiceName.PAYMENT: self.payment,
            ServiceName.POINTS: self.points,
            ServiceName.SHIPPING: self.shipping,
            ServiceName.ORDERS: self.orders,
        }

    async def open(self, only: Iterable[ServiceName] | None = None) -> Domain:
        """Open the named services' stores (all by default); a service process opens its own."""
        for name in only or self.services:
            await self.services[name].store.open()
        return self

    async def close(self) -> None:
        for service in self.services.values():
            await service.store.close()

    def handler(self, step: StepName) -> StepHandler:
        """The method that runs a forward step or compensation, named exactly like the step."""
        handler: StepHandler = getattr(self.services[service_of(step)], step.value)
        return handler

    async def snapshot(self) -> BusinessState:
        return BusinessState(
            stock=await self.inventory.stock(),
            reserved=await self.inventory.reserved(),
            charges=await self.payment.charges(),
            points=await self.points.balances(),
            shipments=await self.shipping.shipments(),
            orders=await self.orders.records(),
        )
