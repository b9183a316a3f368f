"""One process kind as a process runs it: its connection, durables, handlers and relay.

A host is the unit every deployment uses: `bootstrap` runs the chosen ones in one process
(all of them for the embedded runtime, one for ``python -m choreography --service NAME``).
The kinds are the saga definition's services (the orders service also runs the front door's
desk) and the tracker, which projects every saga event into the orders store and so shares its
outbox, and carries out operator commands (choreography/operator.py). Either way a host's
tasks run in its service scope, so its spans name it (shared/telemetry.py). A host stops
cleanly and starts again; a process that dies is restarted by its supervisor, and its
successor knows all it needs from its store and the broker.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from nats.js.errors import NotFoundError

from choreography import operator
from choreography.broker import NatsLogin, NatsSettings
from choreography.bus import BatchConsumer, Bus, ConsumerSpec, LaneConsumer, Outgoing
from choreography.events import Routing, pattern
from choreography.front_door import COMMANDS, Desk
from choreography.outbox import Relay
from choreography.participants import participants_for, subscribed
from choreography.participants.cancel import lane_key
from choreography.tracker import Tracker
from choreography.versions import Reader
from shared.admission import Admission, PolicyLimits
from shared.contracts import ServiceName
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.services import Domain
from shared.settings import Settings
from shared.store import Store
from shared.telemetry import Component, service_component, service_scope

log = logging.getLogger(__name__)

TRACKER = "tracker"
DESK = "orders-front"


def kinds_of_process(definition: SagaDefinition) -> tuple[str, ...]:
    """Every kind of choreography process of a definition: its services and the tracker."""
    return (*(str(name) for name in definition.services), TRACKER)


@dataclass(frozen=True)
class ChoreographySettings:
    """Broker location and the consumers' delivery rules, derived from `Settings`."""

    nats: NatsSettings = field(default_factory=NatsSettings)
    consumer_suffix: str = ""
    """Appended to every durable name: lets several deployments share one broker."""
    ack_wait_s: float = 2.0
    max_deliver: int = 1000
    relay_poll_s: float = 0.25
    wait_poll_s: float = 0.1
    """How often the waits of this process ask which of their sagas' rows changed (one read for
    all of them), for folds made in another process."""
    event_versioning: str = "strict"
    """How this process meets events of another release (choreography/versions.py)."""
    limits: PolicyLimits = field(default_factory=PolicyLimits)
    """How long a saga may run and retry, whatever its place command asks (the desk's check)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ChoreographySettings:
        login = None
        if settings.nats_user:
            password = settings.nats_password.get_secret_value() if settings.nats_password else ""
            login = NatsLogin(settings.nats_user, password)
        return cls(
            nats=NatsSettings(
                url=settings.nats_url or None, replicas=settings.nats_replicas, login=login
            ),
            consumer_suffix=settings.nats_consumer_suffix,
            ack_wait_s=settings.nats_ack_wait_s,
            event_versioning=settings.event_versioning,
            limits=PolicyLimits.from_settings(settings),
        )

    def reader(self, definition: SagaDefinition) -> Reader:
        """How a process holding ``definition`` reads events (docs/versioning.md)."""
        return Reader(definition, self.event_versioning)

    def participant_spec(self, service: str, routing: Routing) -> ConsumerSpec:
        """A service's durable, filtered on exactly the kinds the saga spec routes to it (with
        a tolerant reader: those of every definition it understands)."""
        reader = self.reader(routing.definition)
        kinds = subscribed(service, reader)
        return ConsumerSpec(
            durable=f"{service}{self.consumer_suffix}{reader.durable_suffix}",
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

    def tracker_spec(self, reader: Reader | None = None) -> ConsumerSpec:
        suffix = reader.durable_suffix if reader is not None else ""
        return ConsumerSpec(
            durable=f"{TRACKER}{self.consumer_suffix}{suffix}",
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

    def specs(self, routing: Routing) -> list[ConsumerSpec]:
        reader = self.reader(routing.definition)
        services = dict.fromkeys(s for r in reader.routings.values() for s in r.saga.services)
        participants = [self.participant_spec(s, routing) for s in services]
        tracker = self.tracker_spec(reader)
        return [*participants, self.desk_spec(), tracker, self.operator_spec()]


async def ensure_consumers(bus: Bus, settings: ChoreographySettings, routing: Routing) -> None:
    """Every durable, created before anything is published so nothing is missed. A tolerant
    reader only widens a durable's filter: an instance of another release shares it."""
    widen = settings.reader(routing.definition).tolerant
    for spec in settings.specs(routing):
        await bus.ensure_consumer(await widened(bus, spec) if widen else spec)


async def widened(bus: Bus, spec: ConsumerSpec) -> ConsumerSpec:
    """The spec filtered on its subjects and those the existing durable already has."""
    try:
        info = await bus.js.consumer_info(spec.stream, spec.durable)
    except NotFoundError:
        return spec
    existing = info.config.filter_subjects or []
    if info.config.filter_subject:
        existing = [*existing, info.config.filter_subject]
    subjects = tuple(dict.fromkeys((*spec.filter_subjects, *existing)))
    return replace(spec, filter_subjects=subjects)


class Outlet:
    """Where one store's committed outbox rows go: a live relay over it in this process.

    Built before the hosts and handed to everyone who writes that store (participant,
    tracker, desk); a host plugs its relay in while it runs. With none running the rows wait
    in the store for a relay's poll.
    """

    def __init__(self) -> None:
        self._relays: list[Relay] = []

    def plug(self, relay: Relay) -> None:
        self._relays.append(relay)

    def unplug(self, relay: Relay) -> None:
        self._relays = [r for r in self._relays if r is not relay]

    def __call__(self, rows: list[Outgoing | None]) -> None:
        if self._relays:
            self._relays[0].hand_over(rows)


Consumer = LaneConsumer | BatchConsumer


class Host(ABC):
    """A process kind's connection, consumers and relay, between a start and a stop."""

    def __init__(
        self,
        name: str,
        store: Store,
        outlet: Outlet,
        settings: ChoreographySettings,
        servers: Sequence[str],
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        self.name = name
        self.store = store
        self.outlet = outlet
        self.settings = settings
        self.servers = list(servers)
        self.hooks = hooks
        self.up = asyncio.Event()
        self.down = asyncio.Event()
        self._bus: Bus | None = None
        self._relay: Relay | None = None
        self._consumers: list[Consumer] = []

    @property
    def relay(self) -> Relay | None:
        return self._relay

    @property
    def component(self) -> Component:
        """Whom this host's spans name (service.name, saga.variant on their resource)."""
        return service_component(self.name)

    @abstractmethod
    def consumers(self, bus: Bus) -> list[Consumer]:
        """The consumers of this run (not started yet)."""

    async def prepare(self) -> None:
        """What a host loads from its store before it consumes."""
        return None

    async def stopping(self) -> None:
        """What a clean stop finishes beyond the consumers and the relay."""
        return None

    async def start(self) -> None:
        """Connect and run: the relay first drains whatever an earlier run left unsent.

        Like a restarted process, a host started again knows only what its store says
        (fences). Inside the host's scope: every task started here and every span of theirs
        belong to it, in its own process or in the harness's.
        """
        with service_scope(self.component):
            await self._start()

    async def _start(self) -> None:
        login = self.settings.nats.login_for(self.name)
        bus = self._bus = await Bus.connect(self.servers, f"saga-{self.name}", login)
        self._relay = Relay(
            self.store,
            bus.publish,
            middleware=self.hooks.publish,
            poll_s=self.settings.relay_poll_s,
            name=f"relay {self.name}",
        )
        self.outlet.plug(self._relay)
        await self.prepare()
        self._consumers = self.consumers(bus)
        for consumer in self._consumers:
            await consumer.start()
        self._relay.start()
        self.down.clear()
        self.up.set()

    async def stop(self) -> None:
        """A clean stop: running handlers get a moment to finish, nothing is lost either way.
        The consumers stop together, so their handlers share that moment."""
        await asyncio.gather(*(consumer.stop() for consumer in self._consumers))
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
        """Committed outbox rows for a running relay over this host's store."""
        self.outlet(rows)


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
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        store = domain.services[service].store
        super().__init__(str(service), store, outlet, settings, servers, hooks)
        self.service = service
        routing = tracker.routing  # the saga definition this process holds
        reader = settings.reader(routing.definition)
        self.participants = participants_for(service, domain, reader, outlet, hooks.step)
        self.participant = self.participants.by_definition[routing.definition.ref]
        admits = service == ServiceName.ORDERS
        self.desk = Desk(tracker, Admission(domain, settings.limits)) if admits else None

    async def prepare(self) -> None:
        await self.participants.prepare()

    def consumers(self, bus: Bus) -> list[Consumer]:
        found: list[Consumer] = [
            LaneConsumer(
                bus,
                self.settings.participant_spec(self.service, self.participant.routing),
                handler=self.participants.handle,
                lane_key=lane_key,
            )
        ]
        if self.desk is not None:
            found.append(LaneConsumer(bus, self.settings.desk_spec(), handler=self.desk.handle))
        return found


class TrackerHost(Host):
    """The tracker: the projection's consumer, the deadlines and the end decisions."""

    def __init__(
        self,
        tracker: Tracker,
        outlet: Outlet,
        settings: ChoreographySettings,
        servers: Sequence[str],
        hooks: Hooks = NO_HOOKS,
    ) -> None:
        super().__init__(TRACKER, tracker.store, outlet, settings, servers, hooks)
        self.tracker = tracker

    @property
    def component(self) -> Component:
        """The tracker belongs to the orders service: its spans name ``orders``."""
        return service_component(ServiceName.ORDERS.value)

    async def prepare(self) -> None:
        await self.tracker.start()

    def consumers(self, bus: Bus) -> list[Consumer]:
        spec = self.settings.tracker_spec(self.tracker.views.reader)
        projection = BatchConsumer(bus, spec, batch_handler=self.tracker.project)
        # Operator commands from a front door (the monitor over a deployment), carried out
        # by this tracker once each and answered on the command's reply subject.
        desk = operator.OperatorDesk(self.tracker, bus.nc.publish)
        commands = LaneConsumer(bus, self.settings.operator_spec(), handler=desk.handle)
        return [projection, commands]

    async def stopping(self) -> None:
        await self.tracker.stop()
