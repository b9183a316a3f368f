"""The monitor over a deployment it did not start: front door only.

Orchestration: a client of the Temporal frontend (visibility, queries, histories), and the
operator's updates on the saga's open workflow through it. Choreography: the tracker's
projection in the orders store and the saga stream on the broker to read; operator commands
published on that stream for the orders process's tracker to carry out
(choreography/operator.py). The services' processes, the worker and the servers' own state are
never touched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from choreography import schema
from choreography.bus import Bus
from choreography.events import Routing
from choreography.operator import OperatorCommands
from choreography.read_model import ChoreographyReadModel
from choreography.tracker import Tracker
from monitor.board import Board, Operator
from monitor.settings import MonitorSettings
from orchestration.client import check_search_attributes, connect
from orchestration.read_model import OrchestrationReadModel
from orchestration.saga_client import SagaOperator
from shared.contracts import ServiceName
from shared.definitions import definition_named
from shared.read_model import ReadModel
from shared.services import Domain
from shared.settings import Settings
from shared.store.factory import open_stores

NOTHING_TO_WATCH = (
    "no deployment to watch: set SAGA_TEMPORAL_ADDRESS and/or SAGA_NATS_URL (and the store"
    " settings), or run `saga-compare demo --monitor` for the embedded servers"
)


@asynccontextmanager
async def attached_board(settings: Settings, monitor: MonitorSettings) -> AsyncIterator[Board]:
    """A board over whichever styles the settings name; a ValueError when they name none."""
    if not settings.temporal_address and not settings.nats_url:
        raise ValueError(NOTHING_TO_WATCH)
    models: dict[str, ReadModel] = {}
    operators: dict[str, Operator] = {}
    definition = definition_named(settings.definition)
    async with AsyncExitStack() as stack:
        if settings.temporal_address:
            client = await connect(settings.temporal_address, settings.temporal_namespace)
            await check_search_attributes(client)
            models["orchestration"] = OrchestrationReadModel(client, monitor.temporal_ui_url)
            operators["orchestration"] = SagaOperator(client)
        if settings.nats_url:
            # The choreography's own stores, as its processes keep them (Settings.for_variant).
            chosen = settings.for_variant("choreography")
            stores = await stack.enter_async_context(open_stores(chosen))
            domain = Domain(stores, definition, extra_migrations=schema.MIGRATIONS)
            await domain.open(only=[ServiceName.ORDERS])
            stack.push_async_callback(domain.close)
            bus = await Bus.connect(settings.nats_url.split(","), "saga-monitor")
            stack.push_async_callback(bus.close)
            models["choreography"] = ChoreographyReadModel(domain.orders.store, bus.js, definition)
            # Read only: the projection, never started here.
            tracker = Tracker(domain.orders, routing=Routing(definition))
            suffix = settings.nats_consumer_suffix
            operators["choreography"] = OperatorCommands(bus, tracker, consumer_suffix=suffix)
        yield Board(models, monitor, operators, steps=definition.steps)
