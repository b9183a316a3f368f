"""The choreography's one composition root: broker, stores, streams, durables, tracker, hosts.

Every process of the variant is built here, by constructor injection only: a service process
(``python -m choreography --service NAME``), the tracker's, one running them all, the
harness's front door (no hosts, every store opened for seeding and reading), and a reader of a
running deployment (`reader`: the monitor). What it is given
decides everything: the settings (`ChoreographySettings.from_settings`), the stores'
factory (shared/store/factory.py), the process kinds to run here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from choreography import schema
from choreography.broker import NatsBroker, NatsSettings, ensure_streams
from choreography.bus import Bus
from choreography.events import Routing
from choreography.front_door import record_end
from choreography.host import (
    TRACKER,
    ChoreographySettings,
    Host,
    Outlet,
    ServiceHost,
    TrackerHost,
    ensure_consumers,
)
from choreography.tracker import Tracker
from shared.contracts import ServiceName
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.services import Domain
from shared.services.orders import OrdersService
from shared.store import StoreFactory


@dataclass(frozen=True)
class Choreography:
    """What a process of the variant holds: the resolved settings and what was built."""

    settings: ChoreographySettings
    domain: Domain
    tracker: Tracker
    bus: Bus
    hosts: Mapping[str, Host]
    broker: NatsBroker | None = None

    @property
    def servers(self) -> list[str]:
        return self.settings.nats.servers


def stores_of(kinds: Iterable[str]) -> list[str]:
    """The stores the given process kinds use (the tracker's is the orders store)."""
    return list(dict.fromkeys(ServiceName.ORDERS.value if k == TRACKER else k for k in kinds))


@asynccontextmanager
async def bootstrap(
    settings: ChoreographySettings,
    stores: StoreFactory,
    definition: SagaDefinition,
    *,
    kinds: Sequence[str] = (),
    every_store: bool = False,
    broker_state_dir: Path | None = None,
    connection_name: str = "saga-front",
    hooks: Hooks = NO_HOOKS,
) -> AsyncIterator[Choreography]:
    """Build and start the given process kinds; stop them when the block ends.

    With no URL in the settings an embedded nats-server runs for the block. ``every_store``
    opens every service's store (the front door seeds and reads them); otherwise only the
    kinds'. The routing, the services and the process kinds come from ``definition``; the
    hosts run their steps and publishes through ``hooks`` (none in production).
    """
    async with AsyncExitStack() as stack:
        broker = None
        if settings.nats.embedded:
            broker = await stack.enter_async_context(NatsBroker(state_dir=broker_state_dir))
            settings = replace(settings, nats=replace(settings.nats, url=broker.url))
        domain = Domain(
            stores, definition, extra_migrations=schema.migrations_for(definition.services)
        )
        await domain.open(only=None if every_store else stores_of(kinds))
        stack.push_async_callback(domain.close)
        bus = await Bus.connect(settings.nats.servers, connection_name)
        stack.push_async_callback(bus.close)
        await ensure_streams(bus.js, replicas=settings.nats.replicas)
        routing = Routing(definition)
        await ensure_consumers(bus, settings, routing)
        outlets = {service: Outlet() for service in domain.services}
        tracker = Tracker(
            domain.orders,
            routing=routing,
            hand_over=outlets[ServiceName.ORDERS],
            on_end=record_end,
            poll_s=settings.wait_poll_s,
            reader=settings.reader(definition),
        )
        hosts = build_hosts(kinds, domain, tracker, outlets, settings, hooks)
        for host in hosts.values():
            await host.start()
            stack.push_async_callback(host.stop)
        yield Choreography(settings, domain, tracker, bus, hosts, broker)


@dataclass(frozen=True)
class ChoreographyReader:
    """A watcher of a running deployment: the tracker's projection in the orders store, the
    broker's saga stream, and a tracker that is never started (its operator commands go to the
    deployment's tracker over the stream)."""

    orders: OrdersService
    bus: Bus
    tracker: Tracker


@asynccontextmanager
async def reader(
    settings: ChoreographySettings,
    stores: StoreFactory,
    definition: SagaDefinition,
    *,
    connection_name: str = "saga-monitor",
) -> AsyncIterator[ChoreographyReader]:
    """Wire a reader of the deployment the settings name, changing nothing in it: the orders
    store opened without migrating (`SchemaBehind` when its schema is not this code's), no
    streams, durables or hosts made, no server started."""
    if settings.nats.embedded:
        raise ValueError("a reader watches a running broker: set SAGA_NATS_URL")
    async with AsyncExitStack() as stack:
        domain = Domain(
            stores, definition, extra_migrations=schema.migrations_for(definition.services)
        )
        await domain.open(only=[ServiceName.ORDERS], migrate=False)
        stack.push_async_callback(domain.close)
        bus = await Bus.connect(settings.nats.servers, connection_name)
        stack.push_async_callback(bus.close)
        tracker = Tracker(domain.orders, routing=Routing(definition))
        yield ChoreographyReader(domain.orders, bus, tracker)


def build_hosts(
    kinds: Sequence[str],
    domain: Domain,
    tracker: Tracker,
    outlets: Mapping[str, Outlet],
    settings: ChoreographySettings,
    hooks: Hooks = NO_HOOKS,
) -> dict[str, Host]:
    """One host per kind, each given the outlet of the store it writes."""
    servers = settings.nats.servers
    hosts: dict[str, Host] = {}
    for kind in kinds:
        if kind == TRACKER:
            outlet = outlets[ServiceName.ORDERS]
            hosts[kind] = TrackerHost(tracker, outlet, settings, servers, hooks)
        else:
            outlet = outlets[kind]
            hosts[kind] = ServiceHost(kind, domain, tracker, outlet, settings, servers, hooks)
    return hosts


__all__ = [
    "Choreography",
    "ChoreographyReader",
    "NatsSettings",
    "bootstrap",
    "build_hosts",
    "reader",
    "stores_of",
]
