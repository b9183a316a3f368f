"""One process kind as a process runs it: its connection, durables, handlers and relay.

A host is the unit every deployment uses: `bootstrap` runs the chosen ones in one process
(all of them for the embedded runtime, one for ``python -m choreography --service NAME``).
The kinds are the five services (the orders service also runs the front door's desk) and the
tracker, which projects every saga event into the orders store and so shares its outbox, and
carries out operator commands (choreography/operator.py).
Either way a host's tasks run in its service scope, so its spans name it
(shared/telemetry.py). A host can die on the spot (a simulated process death: nothing acked
or published any more) and come back; with ``crash_exits`` an injected crash point kills the
whole process instead, for its supervisor to restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Sequence
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
from choreography.front_door import COMMANDS, Desk
from choreography.outbox import Relay
from choreography.participants import Participant, kinds_for, reactions_for
from choreography.tracker import Tracker
from shared.contracts import ServiceName
from shared.errors import InjectedCrash
from shared.services import Domain
from shared.settings import Settings
from shared.store import Store
from shared.telemetry import Component, service_component, service_scope

log = logging.getLogger(__name__)

TRACKER = "tracker"
KINDS_OF_PROCESS: tuple[str, ...] = (*(s.value for s in ServiceName), TRACKER)
"""Every kind of choreography process: the five services and the tracker."""
DESK = "orders-front"


@dataclass(frozen=True)
class ChoreographySettings:
    """Broker location and the consumers' delivery rules, derived from `Settings`."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    consumer_suffix: str = ""
    """Appended to every durable name: lets several deployments share one broker."""
    ack_wait_s: float = 2.0
    max_deliver: int = 1000
    restart_delay_s: float = 0.2
    """How long a host stays down after a simulated crash."""
    relay_poll_s: float = 0.25
    wait_poll_s: float = 0.1
    """How often `wait` re-reads the projection when the tracker runs in another process."""
    crash_exits: bool = False
    """An injected crash kills the process (SIGKILL) instead of simulating a death in it."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ChoreographySettings:
        return cls(
            nats=NatsSettings(url=settings.nats_url or None, replicas=settings.nats_replicas),
            consumer_suffix=settings.nats_consumer_suffix,
            ack_wait_s=settings.nats_ack_wait_s,
            crash_exits=settings.crash_exits,
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

    def desk_spec(self) -> ConsumerSpec:
        """The orders service's commands from the front door (place, cancel)."""
        return ConsumerSpec(
            durable=f"{DESK}{self.consumer_suffix}",
            service=ServiceName.ORDERS.value,
            filter_subjects=COMMANDS,
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
        participants = [self.participant_spec(s, routing) for s in routing.saga.services]
        return [*participants, self.desk_spec(), self.tracker_spec(), self.operator_spec()]


def lane_key(value: str) -> str | None:
    """A cancel overtakes its saga's queue: it must reach a step that is still in flight."""
    key = saga_key(value)
    return None if value == subject(CANCEL_REQUESTED, key) else key


async def ensure_consumers(
    bus: Bus, settings: ChoreographySettings, routing: Routing | None = None
) -> None:
    """Every durable, created before anything is published so nothing is missed."""
    for spec in settings.specs(routing):
        await bus.ensure_consumer(spec)


class Outlet:
    """Where one store's committed outbox rows go: a live relay over it in this process.

    Built before the hosts and handed to everyone who writes that store (participant,
    tracker, desk); each life of a host plugs its relay in. With none alive the rows wait in
    the store for a relay's poll.
    """

    def __init__(self) -> None:
        self._relays: list[tuple[Relay, Liveness]] = []

    def plug(self, relay: Relay, liveness: Liveness) -> None:
        self._relays.append((relay, liveness))

    def unplug(self, relay: Relay) -> None:
        self._relays = [(r, live) for r, live in self._relays if r is not relay]

    def __call__(self, rows: list[Outgoing | None]) -> None:
        for relay, liveness in self._relays:
            if liveness.alive:
                relay.hand_over(rows)
                return


Consumer = LaneConsumer | BatchConsumer


class Host(ABC):
    """A process kind's connection, consumers and relay, through its lives."""

    def __init__(
        self,
        name: str,
        store: Store,
        outlet: Outlet,
        settings: ChoreographySettings,
        servers: Sequence[str],
    ) -> None:
        self.name = name
        self.store = store
        self.outlet = outlet
        self.settings = settings
        self.servers = list(servers)
        self.crashes = 0
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self._bus: Bus | None = None
        self._relay: Relay | None = None
        self._consumers: list[Consumer] = []
        self._restart: asyncio.Task[None] | None = None
        self._liveness = Liveness()

    @property
    def relay(self) -> Relay | None:
        return self._relay

    @property
    def component(self) -> Component:
        """Whom this host's spans name (service.name, saga.variant on their resource)."""
        return service_component(self.name)

    @abstractmethod
    def consumers(self, bus: Bus, liveness: Liveness) -> list[Consumer]:
        """This life's consumers (not started yet)."""

    async def prepare(self) -> None:
        """What a new life loads from its store before it consumes."""
        return None

    async def stopping(self) -> None:
        """What a clean stop finishes beyond the consumers and the relay."""
        return None

    def dying(self) -> None:
        """What a death stops on the spot beyond the consumers and the relay."""
        return None

    async def start(self) -> None:
        """Connect and run: the relay first drains whatever an earlier life left unsent.

        Like a restarted process, a host coming back knows only what its store says (fences).
        Inside the host's scope: every task started here and every span of theirs belong to it,
        in its own process or in the harness's.
        """
        with service_scope(self.component):
            await self._start()

    async def _start(self) -> None:
        liveness = self._liveness = Liveness()
        bus = self._bus = await Bus.connect(self.servers, f"saga-{self.name}")
        self._relay = Relay(
            self.store,
            bus.publish,
            liveness=liveness,
            poll_s=self.settings.relay_poll_s,
            name=f"relay {self.name}",
        )
        self.outlet.plug(self._relay, liveness)
        await self.prepare()
        self._consumers = self.consumers(bus, liveness)
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
            self.outlet.unplug(self._relay)
        await self.stopping()
        if self._bus is not None:
            await self._bus.close()
            self._bus = None
        self.up.clear()
        self.down.set()

    def hand_over(self, rows: list[Outgoing | None]) -> None:
        """Committed outbox rows for a live relay over this host's store."""
        self.outlet(rows)

    def crash(self) -> None:
        """Die now, like a killed process (nothing acked or published), and come back later."""
        self.on_fatal(RuntimeError("killed on request"))

    def on_fatal(self, cause: BaseException) -> None:
        if self.settings.crash_exits and isinstance(cause, InjectedCrash):
            log.warning("%s: %s; the process ends here", self.name, cause)
            os.kill(os.getpid(), signal.SIGKILL)
        if self._restart is not None and not self._restart.done():
            return
        self._liveness.alive = False
        self.crashes += 1
        log.warning("%s died (%s); restarting", self.name, cause)
        for consumer in self._consumers:
            consumer.kill()
        if self._relay is not None:
            self._relay.kill()
            self.outlet.unplug(self._relay)
        self.dying()
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


class ServiceHost(Host):
    """A service's participant; the orders service also runs the front door's desk."""

    def __init__(
        self,
        service: str,
        domain: Domain,
        tracker: Tracker,
        outlet: Outlet,
        settings: ChoreographySettings,
        servers: Sequence[str],
    ) -> None:
        store = domain.services[service].store
        super().__init__(str(service), store, outlet, settings, servers)
        self.service = service
        routing = tracker.routing  # the saga spec this deployment runs
        self.participant = Participant(
            service,
            domain,
            reactions_for(service, routing),
            routing=routing,
            hand_over=outlet,
        )
        self.desk = Desk(tracker) if service == ServiceName.ORDERS else None

    async def prepare(self) -> None:
        await self.participant.prepare()

    def consumers(self, bus: Bus, liveness: Liveness) -> list[Consumer]:
        found: list[Consumer] = [
            LaneConsumer(
                bus,
                self.settings.participant_spec(self.service, self.participant.routing),
                liveness,
                self.on_fatal,
                handler=self.participant.handle,
                lane_key=lane_key,
            )
        ]
        if self.desk is not None:
            found.append(
                LaneConsumer(
                    bus,
                    self.settings.desk_spec(),
                    liveness,
                    self.on_fatal,
                    handler=self.desk.handle,
                )
            )
        return found


class TrackerHost(Host):
    """The tracker: the projection's consumer, the deadlines and the end decisions."""

    def __init__(
        self,
        tracker: Tracker,
        outlet: Outlet,
        settings: ChoreographySettings,
        servers: Sequence[str],
    ) -> None:
        super().__init__(TRACKER, tracker.store, outlet, settings, servers)
        self.tracker = tracker

    @property
    def component(self) -> Component:
        """The tracker belongs to the orders service: its spans name ``orders``."""
        return service_component(ServiceName.ORDERS.value)

    async def prepare(self) -> None:
        await self.tracker.start()

    def consumers(self, bus: Bus, liveness: Liveness) -> list[Consumer]:
        spec = self.settings.tracker_spec()
        projection = BatchConsumer(
            bus, spec, liveness, self.on_fatal, batch_handler=self.tracker.project
        )
        # Operator commands from a front door (the monitor over a deployment), carried out
        # by this tracker once each and answered on the command's reply subject.
        desk = operator.OperatorDesk(self.tracker, bus.nc.publish)
        commands = LaneConsumer(
            bus, self.settings.operator_spec(), liveness, self.on_fatal, handler=desk.handle
        )
        return [projection, commands]

    async def stopping(self) -> None:
        await self.tracker.stop()

    def dying(self) -> None:
        self.tracker.kill()
