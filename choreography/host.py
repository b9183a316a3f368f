"""One service as a process runs it: its connection, durables, participant and relay.

`ServiceHost` is the unit both deployments use: `open_runtime` runs the five of them in one
process, `python -m choreography --service NAME` one per process. Either way a host's tasks
run in its service scope, so its spans name the service (shared/telemetry.py). A host can die
on the spot (a simulated process death: nothing acked or published any more) and come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from choreography import operator
from choreography.broker import NatsSettings
from choreography.bus import (
    BatchConsumer,
    Bus,
    ConsumerSpec,
    LaneConsumer,
    Liveness,
    Outgoing,
)
from choreography.events import CANCEL_REQUESTED, Routing, pattern, saga_key, subject
from choreography.outbox import Relay
from choreography.participants import Participant, kinds_for, reactions_for
from choreography.tracker import Tracker
from shared.contracts import ServiceName
from shared.services import Domain
from shared.telemetry import Component, service_component, service_scope

log = logging.getLogger(__name__)

TRACKER = "tracker"


@dataclass(frozen=True)
class ChoreographySettings:
    """Broker location and the consumers' delivery rules (env: SAGA_NATS_URL, ...)."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    consumer_suffix: str = ""
    """Appended to every durable name: lets several deployments share one broker."""
    ack_wait_s: float = 2.0
    max_deliver: int = 1000
    restart_delay_s: float = 0.2
    """How long a service stays down after a simulated crash."""
    relay_poll_s: float = 0.25
    wait_poll_s: float = 0.1
    """How often `wait` re-reads the projection when the tracker runs in another process."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChoreographySettings:
        source = os.environ if env is None else env
        return cls(
            nats=NatsSettings.from_env(source),
            consumer_suffix=source.get("SAGA_NATS_CONSUMER_SUFFIX", ""),
        )

    def participant_spec(self, service: str, routing: Routing | None = None) -> ConsumerSpec:
        """A service's durable, filtered on exactly the kinds the saga spec routes to it."""
        kinds = kinds_for(service, routing or Routing())
        return ConsumerSpec(
            durable=f"{service}{self.consumer_suffix}",
            service=str(service),
            filter_subjects=tuple(pattern(kind) for kind in kinds),
            ack_wait_s=self.ack_wait_s,
            max_deliver=self.max_deliver,
        )

    def tracker_spec(self) -> ConsumerSpec:
        return ConsumerSpec(
            durable=f"{TRACKER}{self.consumer_suffix}",
            service=TRACKER,
            filter_subjects=("saga.>",),
            ack_wait_s=max(self.ack_wait_s, 5.0),
            max_deliver=self.max_deliver,
            batch=256,
            max_inflight=512,
        )

    def operator_spec(self) -> ConsumerSpec:
        """Operator commands from a front door (the monitor), read where the tracker runs."""
        return ConsumerSpec(
            durable=f"{operator.DURABLE}{self.consumer_suffix}",
            service=TRACKER,
            filter_subjects=operator.SUBJECTS,
            ack_wait_s=self.ack_wait_s,
            max_deliver=self.max_deliver,
        )

    def specs(self, routing: Routing | None = None) -> list[ConsumerSpec]:
        routing = routing or Routing()
        services = routing.saga.services
        participants = [self.participant_spec(s, routing) for s in services]
        return [*participants, self.tracker_spec(), self.operator_spec()]


def lane_key(value: str) -> str | None:
    """A cancel overtakes its saga's queue: it must reach a step that is still in flight."""
    key = saga_key(value)
    return None if value == subject(CANCEL_REQUESTED, key) else key


async def ensure_consumers(
    bus: Bus, settings: ChoreographySettings, routing: Routing | None = None
) -> None:
    """Every service's durable, created before anything is published so nothing is missed."""
    for spec in settings.specs(routing):
        await bus.ensure_consumer(spec)


class ServiceHost:
    """One service as a process runs it: its connection, consumers and relay; it can die."""

    def __init__(
        self,
        service: str,
        domain: Domain,
        tracker: Tracker,
        settings: ChoreographySettings,
        servers: Sequence[str],
    ) -> None:
        self.service = service
        self.settings = settings
        self.servers = list(servers)
        self.tracker = tracker if service == ServiceName.ORDERS else None
        routing = tracker.routing  # the saga spec this deployment runs
        self.participant = Participant(
            service,
            domain,
            reactions_for(service, routing),
            routing=routing,
            hand_over=self.hand_over,
        )
        self.crashes = 0
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self._bus: Bus | None = None
        self._relay: Relay | None = None
        self._consumers: list[LaneConsumer | BatchConsumer] = []
        self._restart: asyncio.Task[None] | None = None
        self._liveness = Liveness()

    @property
    def relay(self) -> Relay | None:
        return self._relay

    @property
    def component(self) -> Component:
        """Whom this host's spans name (service.name, saga.variant on their resource)."""
        return service_component(str(self.service))

    async def start(self) -> None:
        """Connect and run: the relay first drains whatever an earlier life left unsent.

        Like a restarted process, a host coming back knows only what its store says (fences).
        Inside the service's scope: every task started here (consumers, relay, tracker) and
        every span of theirs belongs to this service, in its own process or in the harness's.
        """
        with service_scope(self.component):
            await self._start()

    async def _start(self) -> None:
        self._liveness = Liveness()
        await self.participant.prepare()
        bus = self._bus = await Bus.connect(self.servers, f"saga-{self.service}")
        self._relay = Relay(
            self.participant.store,
            bus.publish,
            liveness=self._liveness,
            poll_s=self.settings.relay_poll_s,
            name=f"relay {self.service}",
        )
        self._consumers = [
            LaneConsumer(
                bus,
                self.settings.participant_spec(self.service, self.participant.routing),
                self._liveness,
                self._on_fatal,
                handler=self.participant.handle,
                lane_key=lane_key,
            )
        ]
        if self.tracker is not None:
            self.tracker.hand_over = self.hand_over
            self._consumers.append(
                BatchConsumer(
                    bus,
                    self.settings.tracker_spec(),
                    self._liveness,
                    self._on_fatal,
                    batch_handler=self.tracker.project,
                )
            )
            desk = operator.OperatorDesk(self.tracker, bus.nc.publish)
            self._consumers.append(
                LaneConsumer(
                    bus,
                    self.settings.operator_spec(),
                    self._liveness,
                    self._on_fatal,
                    handler=desk.handle,
                )
            )
            await self.tracker.start()
        for consumer in self._consumers:
            await consumer.start()
        self._relay.start()
        self.down.clear()
        self.up.set()

    async def stop(self) -> None:
        """A clean stop: running handlers get a moment to finish, nothing is lost either way."""
        if self._restart is not None:
            self._restart.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._restart
            self._restart = None
        for consumer in self._consumers:
            await consumer.stop()
        self._consumers = []
        if self._relay is not None:
            await self._relay.stop()
        if self.tracker is not None:
            await self.tracker.stop()
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        self.up.clear()
        self.down.set()

    def hand_over(self, rows: list[Outgoing | None]) -> None:
        """Committed outbox rows for this life's relay (a dead host leaves them to the poll)."""
        if self._relay is not None and self._liveness.alive:
            self._relay.hand_over(rows)

    def crash(self) -> None:
        """Die now, like a killed process (nothing acked or published), and come back later."""
        self._on_fatal(RuntimeError("killed on request"))

    def _on_fatal(self, cause: BaseException) -> None:
        if self._restart is not None and not self._restart.done():
            return
        self._liveness.alive = False
        self.crashes += 1
        log.warning("%s died (%s); restarting", self.service, cause)
        for consumer in self._consumers:
            consumer.kill()
        if self._relay is not None:
            self._relay.kill()
        if self.tracker is not None:
            self.tracker.kill()
        self.up.clear()
        self.down.set()
        self._restart = asyncio.ensure_future(self._come_back())

    async def _come_back(self) -> None:
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        self._consumers = []
        await asyncio.sleep(self.settings.restart_delay_s)
        await self.start()


async def start_hosts(
    stack: AsyncExitStack,
    services: Sequence[str],
    domain: Domain,
    tracker: Tracker,
    settings: ChoreographySettings,
    servers: Sequence[str],
) -> dict[str, ServiceHost]:
    """Run each service as a host in this process; the stack stops them."""
    hosts: dict[str, ServiceHost] = {}
    for service in services:
        host = ServiceHost(service, domain, tracker, settings, servers)
        await host.start()
        stack.push_async_callback(host.stop)
        hosts[service] = host
    return hosts
