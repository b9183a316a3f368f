"""The domain composition root: five services, each with its own store, found by step name."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from shared.contracts import BusinessState, ServiceName, StepName
from shared.saga import service_of
from shared.services import inventory, orders, payment, points, shipping
from shared.services.base import Service, StepHandler, Within
from shared.services.inventory import InventoryService
from shared.services.orders import OrdersService
from shared.services.payment import PaymentService
from shared.services.points import PointsService
from shared.services.shipping import ShippingService
from shared.store import SqliteStore

__all__ = ["Domain", "Service", "StepHandler", "Within"]


class Domain:
    """All services over one data folder: one SQLite file per service, nothing opened yet."""

    def __init__(self, data_dir: Path, *, synchronous: str = "NORMAL") -> None:
        def store(name: ServiceName, migrations: list[str]) -> SqliteStore:
            return SqliteStore(data_dir / f"{name.value}.db", migrations, synchronous=synchronous)

        self.data_dir = data_dir
        self.inventory = InventoryService(store(ServiceName.INVENTORY, inventory.MIGRATIONS))
        self.payment = PaymentService(store(ServiceName.PAYMENT, payment.MIGRATIONS))
        self.points = PointsService(store(ServiceName.POINTS, points.MIGRATIONS))
        self.shipping = ShippingService(store(ServiceName.SHIPPING, shipping.MIGRATIONS))
        self.orders = OrdersService(store(ServiceName.ORDERS, orders.MIGRATIONS))
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
