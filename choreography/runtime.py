"""The choreography variant's composition root: broker, streams, consumers, services, tracker.

`open_runtime` starts an embedded nats-server unless the settings name a URL, makes sure the
streams and every durable consumer exist (before anything is published), and runs the chosen
services in this process, each as a `ServiceHost` with its own connection — the same unit a
separate process runs (`python -m choreography --service NAME`). With no services chosen the
runtime is only the front door: it places orders and reads the tracker's projection.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import replace
from pathlib import Path

from opentelemetry import propagate

from choreography import outbox, schema
from choreography.broker import NatsBroker, NatsSettings, ensure_streams
from choreography.bus import Bus, Outgoing
from choreography.events import Routing, placed
from choreography.host import ChoreographySettings, ServiceHost, ensure_consumers, start_hosts
from choreography.outbox import Relay
from choreography.tracker import Intervention, Tracker
from shared.catalogue import admit
from shared.contracts import (
    ActionResult,
    OperatorAction,
    OrderRequest,
    Reason,
    SagaOutcome,
    SagaPolicy,
    ServiceName,
)
from shared.faults import FaultPlan
from shared.saga import SAGA, SagaSpec
from shared.services import SERVICES, Domain, ServiceDef
from shared.store import StoreFactory, Tx, sqlite_stores
from shared.telemetry import Tracing, service_scope

__all__ = ["ChoreographyRuntime", "ChoreographySettings", "open_runtime"]

VARIANT = "choreography"
LOCAL_WAIT_POLL_S = 1.0
OPERATOR_WAIT_S = 300.0
"""How long an operator's retry may take before the call gives up waiting (it goes on)."""


class ChoreographyRuntime:
    """SagaRuntime over NATS JetStream: sagas advance by events between the services."""

    variant = VARIANT

    def __init__(
        self,
        domain: Domain,
        tracker: Tracker,
        bus: Bus,
        hosts: Mapping[str, ServiceHost],
        front_relay: Relay | None,
        nats_url: str,
        settings: ChoreographySettings,
    ) -> None:
        self.domain = domain
        self.tracker = tracker
        self.bus = bus
        self.hosts = dict(hosts)
        self._front_relay = front_relay
        self.nats_url = nats_url
        self.settings = settings

    async def start_saga(
        self, saga_id: str, order: OrderRequest, faults: FaultPlan, policy: SagaPolicy
    ) -> None:
        """Place the order, its tracker row and ``order.placed`` in one transaction."""
        await admit(self.domain, order)
        event = placed(saga_id, order, faults, policy, started_at=time.time())
        carrier: dict[str, str] = {}
        propagate.inject(carrier)

        rows: list[Outgoing | None] = []

        def hook(tx: Tx) -> None:
            self.tracker.record_start(tx, event, carrier.get("traceparent"))
            rows.append(outbox.add(tx, event))

        await self.domain.orders.place(saga_id, order, within=hook)
        self._hand_over(rows)
        with self._tracker_scope():
            self.tracker.watch(saga_id, event.deadline_at)  # its deadline task is the tracker's

    async def cancel_saga(self, saga_id: str) -> None:
        """The customer's cancel: ``order.cancel_requested`` unless past the pivot."""
        await self.tracker.request_cancel(saga_id, Reason.CANCELLED_BY_CUSTOMER)

    async def describe(self, saga_id: str) -> SagaOutcome:
        return await self.tracker.describe(saga_id)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        return await self.tracker.wait(saga_id, timeout_s)

    async def interventions(self) -> list[Intervention]:
        return await self.tracker.interventions()

    async def retry_compensation(
        self, saga_id: str, who: str, timeout_s: float = OPERATOR_WAIT_S
    ) -> OperatorAction:
        """An operator retries the saga's failed compensations; returns what came of it."""
        action = await self.tracker.retry_compensation(saga_id, who)
        if action.result is not ActionResult.PENDING:
            return action
        index = len((await self.tracker.describe(saga_id)).actions) - 1
        return await self.tracker.wait_action(saga_id, index, timeout_s)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """An operator marks the saga resolved by hand, with a note."""
        return await self.tracker.resolve(saga_id, who, note)

    def host(self, service: str) -> ServiceHost:
        return self.hosts[service]

    def _tracker_scope(self) -> contextlib.AbstractContextManager[None]:
        """The orders service's scope when its host (and so the tracker) runs in this process."""
        host = self.hosts.get(ServiceName.ORDERS)
        return service_scope(host.component) if host is not None else contextlib.nullcontext()

    def _hand_over(self, rows: list[Outgoing | None]) -> None:
        host = self.hosts.get(ServiceName.ORDERS)
        if host is not None:
            host.hand_over(rows)
        if self._front_relay is not None:
            self._front_relay.hand_over(rows)


@asynccontextmanager
async def open_runtime(
    data_dir: Path,
    *,
    settings: ChoreographySettings | None = None,
    tracing: Tracing | None = None,
    services: Iterable[str] | None = None,
    broker_state_dir: Path | None = None,
    stores: StoreFactory | None = None,
    saga: SagaSpec = SAGA,
    registry: Mapping[str, ServiceDef] = SERVICES,
) -> AsyncIterator[ChoreographyRuntime]:
    """Yield a ready runtime; what it started is stopped when the block ends.

    ``services`` run in this process (default: all the saga's); pass ``()`` when they run as
    separate processes and this process only starts and observes sagas. The services' stores
    come from ``stores`` (default: one SQLite file per service in ``data_dir``). ``saga`` is
    the spec the routing is derived from, ``registry`` the services implementing its steps.
    """
    settings = settings or ChoreographySettings.from_env()
    chosen = list(saga.services) if services is None else list(services)
    routing = Routing(saga)
    async with AsyncExitStack() as stack:
        servers = settings.nats.servers
        if settings.nats.embedded:
            broker = NatsBroker(state_dir=broker_state_dir)
            await stack.enter_async_context(broker)
            servers = [broker.url]
            settings = replace(settings, nats=NatsSettings(url=broker.url))
        domain = Domain(
            stores or sqlite_stores(data_dir),
            saga=saga,
            services=registry,
            extra_migrations=schema.migrations_for(registry),
        )
        await domain.open()
        stack.push_async_callback(domain.close)
        bus = await Bus.connect(servers, "saga-front")
        stack.push_async_callback(bus.close)
        await ensure_streams(bus.js, replicas=settings.nats.replicas)
        await ensure_consumers(bus, settings, routing)
        tracker = Tracker(domain.orders, routing=routing, poll_s=settings.wait_poll_s)
        hosts = await start_hosts(stack, chosen, domain, tracker, settings, servers)
        front_relay = None
        if ServiceName.ORDERS in hosts:
            tracker.poll_s = LOCAL_WAIT_POLL_S  # woken by the tracker itself; polling is a backstop
        else:
            front_relay = Relay(domain.orders.store, bus.publish, name="relay front door")
            tracker.hand_over = front_relay.hand_over
            front_relay.start()
            stack.push_async_callback(front_relay.stop)
        if tracing is not None:
            stack.callback(tracing.flush)
        yield ChoreographyRuntime(domain, tracker, bus, hosts, front_relay, servers[0], settings)
