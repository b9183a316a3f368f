"""The domain composition root: the services a saga uses, each with its own store.

A service is registered by name (`ServiceDef`: its class and its tables); `Domain` builds
every registered service over a store the factory makes and finds a step's handler through
the saga spec — a method named exactly like the step, on the step's service.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from shared.contracts import BusinessState, ServiceName
from shared.saga import SAGA, SagaSpec
from shared.services import inventory, orders, payment, points, shipping
from shared.services.base import Fence, FenceHook, Service, StepHandler, Within
from shared.services.inventory import InventoryService
from shared.services.orders import OrdersService
from shared.services.payment import PaymentService
from shared.services.points import PointsService
from shared.services.shipping import ShippingService
from shared.store import Migration, Store, StoreFactory

__all__ = [
    "SERVICES",
    "Domain",
    "ExtraMigrations",
    "Fence",
    "FenceHook",
    "Service",
    "ServiceDef",
    "StepHandler",
    "Within",
]

S = TypeVar("S", bound=Service)


@dataclass(frozen=True)
class ServiceDef:
    """How to build one service: its class over a store, and that store's own tables."""

    build: Callable[[Store], Service]
    migrations: tuple[Migration, ...]


SERVICES: dict[str, ServiceDef] = {
    ServiceName.INVENTORY: ServiceDef(InventoryService, inventory.MIGRATIONS),
    ServiceName.PAYMENT: ServiceDef(PaymentService, payment.MIGRATIONS),
    ServiceName.POINTS: ServiceDef(PointsService, points.MIGRATIONS),
    ServiceName.SHIPPING: ServiceDef(ShippingService, shipping.MIGRATIONS),
    ServiceName.ORDERS: ServiceDef(OrdersService, orders.MIGRATIONS),
}
"""The order saga's five services; a spec with more steps registers its services beside them."""

ExtraMigrations = Mapping[str, Sequence[Migration]]
"""Tables a caller adds to a service's store (the choreography's outbox, inbox, tracker ...)."""


class Domain:
    """Every registered service, each over a store the factory builds; nothing is opened yet.

    ``extra_migrations`` lets a variant keep its own tables in a service's store, so they
    commit in the service's transactions, under the one migration system of that store.
    """

    def __init__(
        self,
        stores: StoreFactory,
        *,
        saga: SagaSpec = SAGA,
        services: Mapping[str, ServiceDef] = SERVICES,
        extra_migrations: ExtraMigrations | None = None,
    ) -> None:
        missing = [name for name in (*saga.services, *ServiceName) if name not in services]
        if missing:
            raise ValueError(f"no service registered for {', '.join(missing)}")
        extra = extra_migrations or {}
        self.saga = saga
        self.services: dict[str, Service] = {
            name: spec.build(stores(name, (*spec.migrations, *extra.get(name, ()))))
            for name, spec in services.items()
        }
        self.inventory = self._typed(ServiceName.INVENTORY, InventoryService)
        self.payment = self._typed(ServiceName.PAYMENT, PaymentService)
        self.points = self._typed(ServiceName.POINTS, PointsService)
        self.shipping = self._typed(ServiceName.SHIPPING, ShippingService)
        self.orders = self._typed(ServiceName.ORDERS, OrdersService)
        self.fenced: set[tuple[str, str]] = set()
        """(saga id, step) a cancel fenced through this domain (in this process)."""

    def _typed(self, name: str, kind: type[S]) -> S:
        service = self.services[name]
        if not isinstance(service, kind):
            raise TypeError(f"service {name} must be a {kind.__name__}")
        return service

    async def open(self, only: Iterable[str] | None = None) -> Domain:
        """Open the named services' stores (all by default); a service process opens its own."""
        for name in only or self.services:
            await self.services[name].store.open()
        return self

    async def close(self) -> None:
        for service in self.services.values():
            await service.store.close()

    def service_of(self, step: str) -> Service:
        return self.services[self.saga.service_of(step)]

    async def fence(self, saga_id: str, step: str, within: FenceHook | None = None) -> Fence:
        """A cancel reaching a forward step, through the step's own service (one transaction)."""
        answer = await self.service_of(step).fence(saga_id, step, within)
        self.fenced.add((saga_id, step))
        if len(self.fenced) > 10_000:
            self.fenced.clear()
        return answer

    async def until_fenced(self, saga_id: str, step: str, timeout_s: float) -> bool:
        """Wait until a cancel has fenced this step of the saga in this process (the fault
        injection's ``until_cancelled``); False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while (saga_id, step) not in self.fenced:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    def handler(self, step: str) -> StepHandler:
        """The method that runs a forward step or compensation, named exactly like the step."""
        handler: StepHandler = getattr(self.services[self.saga.service_of(step)], step)
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
