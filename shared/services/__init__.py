"""The domain composition root: the services a saga uses, each with its own store.

A service is registered by name (`ServiceDef`: its class, its tables and, for a service beyond
the order saga's five, the business state it contributes); `Domain` builds every service of a
`SagaDefinition` over a store the factory makes and finds a step's handler through the saga
spec — a method named exactly like the step, on the step's service. It gives every service the
isolation countermeasures of the process (`shared/countermeasures.py`) and wires the read paths
a countermeasure needs: the catalogue's prices for payment, the orders' ends for points.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from shared.contracts import BusinessState, OrderRequest, ServiceName
from shared.countermeasures import DEFAULT, Countermeasures
from shared.saga import SagaSpec
from shared.services import inventory, orders, payment, points, shipping
from shared.services.base import Fence, FenceHook, Service, StepHandler, Within
from shared.services.inventory import InventoryService
from shared.services.orders import OrdersService
from shared.services.payment import PaymentService
from shared.services.points import PointsService
from shared.services.shipping import ShippingService
from shared.store import Migration, Store, StoreFactory

if TYPE_CHECKING:
    from shared.definition import SagaDefinition

__all__ = [
    "SERVICES",
    "Domain",
    "Effect",
    "ExtraMigrations",
    "Fence",
    "FenceHook",
    "Service",
    "ServiceDef",
    "StatePart",
    "StepHandler",
    "Within",
]

S = TypeVar("S", bound=Service)


Effect = tuple[OrderRequest, frozenset[str]]
"""An order and the forward steps whose effect remains at the end of its saga."""


class StatePart(Protocol):
    """The business state a service beyond the order saga's five contributes to a run's state,
    its seed and its conservation invariant (``<name>_conserved``). Keys are ids (customer,
    product or saga ids) so a run's share of a deployment can be picked out by them."""

    name: str

    async def snapshot(self, service: Service) -> dict[str, int]:
        """The service's state: key -> amount."""
        ...

    async def open_accounts(self, service: Service, customers: Sequence[str]) -> None:
        """Seed these customers beside whatever the store holds (never wipes)."""
        ...

    def expected(self, customers: Sequence[str], effects: Sequence[Effect]) -> dict[str, int]:
        """The state a correct run leaves, from the seeded customers and each order's effects."""
        ...


@dataclass(frozen=True)
class ServiceDef:
    """How to build one service: its class over a store and the countermeasures it applies,
    that store's own tables, and the business state it contributes (None for the order saga's
    five, whose state is fixed)."""

    build: Callable[[Store, Countermeasures], Service]
    migrations: tuple[Migration, ...]
    state: StatePart | None = None


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
    """Every service of a definition, each over a store the factory builds; nothing is opened.

    ``extra_migrations`` lets a variant keep its own tables in a service's store, so they
    commit in the service's transactions, under the one migration system of that store.
    ``countermeasures`` are the process's isolation switches (the defaults in production).
    """

    def __init__(
        self,
        stores: StoreFactory,
        definition: SagaDefinition,
        *,
        extra_migrations: ExtraMigrations | None = None,
        countermeasures: Countermeasures = DEFAULT,
    ) -> None:
        services = definition.services
        missing = [name for name in ServiceName if name not in services]
        if missing:
            raise ValueError(f"no service registered for {', '.join(missing)}")
        extra = extra_migrations or {}
        self.definition = definition
        self.saga: SagaSpec = definition.spec
        self.countermeasures = countermeasures
        self.services: dict[str, Service] = {
            name: spec.build(
                stores(name, (*spec.migrations, *extra.get(name, ()))), countermeasures
            )
            for name, spec in services.items()
        }
        self.inventory = self._typed(ServiceName.INVENTORY, InventoryService)
        self.payment = self._typed(ServiceName.PAYMENT, PaymentService)
        self.points = self._typed(ServiceName.POINTS, PointsService)
        self.shipping = self._typed(ServiceName.SHIPPING, ShippingService)
        self.orders = self._typed(ServiceName.ORDERS, OrdersService)
        self.payment.prices = self.inventory.prices
        self.points.order_ends = self.orders.ends

    def _typed(self, name: str, kind: type[S]) -> S:
        service = self.services[name]
        if not isinstance(service, kind):
            raise TypeError(f"service {name} must be a {kind.__name__}")
        return service

    async def open(self, only: Iterable[str] | None = None, *, migrate: bool = True) -> Domain:
        """Open the named services' stores (all by default); a service process opens its own,
        and those whose read path its countermeasures use (`Service.reads_from`). A reader of
        stores other processes own (the monitor) opens them with ``migrate=False``: nothing
        changes, and a schema behind this code raises `SchemaBehind`."""
        opened: list[Service] = []
        try:
            for name in self._with_reads(only or self.services):
                await self.services[name].store.open(migrate=migrate)
                opened.append(self.services[name])
        except BaseException:
            for service in opened:
                await service.store.close()
            raise
        return self

    def _with_reads(self, names: Iterable[str]) -> list[str]:
        chosen = list(dict.fromkeys(names))
        return list(
            dict.fromkeys(
                [*chosen, *(peer for name in chosen for peer in self.services[name].reads_from)]
            )
        )

    async def close(self) -> None:
        for service in self.services.values():
            await service.store.close()

    def service_of(self, step: str) -> Service:
        return self.services[self.saga.service_of(step)]

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
            extra={
                part.name: await part.snapshot(self.services[service])
                for service, part in self.definition.state_parts.items()
            },
        )
