"""The choreography's one composition root: broker, stores, streams, durables, tracker, hosts.

Every process of the variant is built here, by constructor injection only: a service process
(``python -m choreography --service NAME``), the tracker's, one running them all, the
harness's front door (no hosts, every store opened for seeding and reading), and a reader of a
running deployment (`reader`: the monitor). What it is given
decides everything: the settings (`ChoreographySettings.from_settings`), the stores'
factory (shared/store/factory.py), the process kinds to run here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from choreography import schema
from choreography.access import ADMIN, FRONT, MONITOR, Logins
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
from shared.catalogue import CATALOGUE_STORES
from shared.contracts import ServiceName
from shared.countermeasures import DEFAULT, Countermeasures
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.services import Domain
from shared.services.orders import OrdersService
from shared.store import SchemaBehind, StoreFactory

CATALOGUE_WAIT_S = 60.0
"""How long the orders service waits for the catalogue's stores to be made by their owners."""
CATALOGUE_POLL_S = 0.2


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
    countermeasures: Countermeasures = DEFAULT,
) -> AsyncIterator[Choreography]:
    """Build and start the given process kinds; stop them when the block ends.

    With no URL in the settings an embedded nats-server runs for the block, admitting only the
    users of choreography/access.py: each host logs in as its own kind, the front door as
    ``front``, the set-up as ``admin``. ``every_store`` opens every service's store (the front
    door seeds and reads them); otherwise only the kinds' (and, for the orders service, the
    catalogue's, read-only). The routing, the services and the process kinds come from
    ``definition``; the hosts run their steps and publishes through ``hooks`` (none in
    production); the services apply ``countermeasures`` (the isolation switches,
    docs/anomalies.md).
    """
    async with AsyncExitStack() as stack:
        broker = None
        if settings.nats.embedded:
            logins = Logins.generate(definition, settings.consumer_suffix)
            broker = await stack.enter_async_context(
                NatsBroker(state_dir=broker_state_dir, auth=logins.auth())
            )
            nats = replace(settings.nats, url=broker.url, logins=logins.by_role)
            settings = replace(settings, nats=nats)
        domain = Domain(
            stores,
            definition,
            extra_migrations=schema.migrations_for(definition.services),
            countermeasures=countermeasures,
        )
        stack.push_async_callback(domain.close)
        await domain.open(only=None if every_store else stores_of(kinds))
        if not every_store and ServiceName.ORDERS in kinds:
            await open_catalogue(domain, stores_of(kinds))
        servers = settings.nats.servers
        bus = await Bus.connect(servers, connection_name, settings.nats.login_for(FRONT))
        stack.push_async_callback(bus.close)
        if kinds or broker is not None:
            # The streams and durables, made sure of before anything is published (a front
            # door alone, on a broker someone else runs, finds them there).
            await set_up(settings, definition, bus)
        routing = Routing(definition)
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
        started: list[Host] = []
        stack.push_async_callback(_stop_together, started)
        for host in hosts.values():
            await host.start()
            started.append(host)
        yield Choreography(settings, domain, tracker, bus, hosts, broker)


async def _stop_together(hosts: list[Host]) -> None:
    """Stop the hosts at once: each stops fetching now and its running handlers share one
    grace period (one host after another let the others fetch on meanwhile, and took a grace
    period per host with a handler running — past a supervisor's stop timeout)."""
    await asyncio.gather(*(host.stop() for host in hosts))


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
        login = settings.nats.login_for(MONITOR)
        bus = await Bus.connect(settings.nats.servers, connection_name, login)
        stack.push_async_callback(bus.close)
        tracker = Tracker(domain.orders, routing=Routing(definition))
        yield ChoreographyReader(domain.orders, bus, tracker)


async def set_up(settings: ChoreographySettings, definition: SagaDefinition, bus: Bus) -> None:
    """The saga's streams and every durable, on the admin's connection where this process has
    that user (the embedded runtime), else on its own (a process kind may do its set-up)."""
    admin = settings.nats.login_for(ADMIN)
    if admin == settings.nats.login_for(FRONT):
        await _ensure(settings, definition, bus)
        return
    setup = await Bus.connect(settings.nats.servers, "saga-setup", admin)
    try:
        await _ensure(settings, definition, setup)
    finally:
        await setup.close()


async def _ensure(settings: ChoreographySettings, definition: SagaDefinition, bus: Bus) -> None:
    await ensure_streams(bus.js, replicas=settings.nats.replicas)
    await ensure_consumers(bus, settings, Routing(definition))


async def open_catalogue(domain: Domain, own: Sequence[str]) -> None:
    """The catalogue's stores the orders service reads to admit orders, opened read-only
    (``migrate=False``: their own services create and migrate them); waits for them a while,
    as a deployment starts its processes together."""
    wanted = [name for name in CATALOGUE_STORES if name not in own]
    deadline = time.monotonic() + CATALOGUE_WAIT_S
    while True:
        try:
            await domain.open(only=wanted, migrate=False)
            return
        except SchemaBehind:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(CATALOGUE_POLL_S)


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
