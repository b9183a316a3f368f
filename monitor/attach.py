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

from choreography import bootstrap as choreography
from choreography.host import ChoreographySettings
from choreography.operator import OperatorCommands
from choreography.read_model import ChoreographyReadModel
from monitor.board import Board, Operator
from monitor.settings import MonitorSettings
from monitor.wiring import lock_waits
from orchestration import bootstrap as orchestration
from orchestration.client import untraced
from orchestration.read_model import OrchestrationReadModel
from orchestration.saga_client import SagaOperator
from orchestration.server import TemporalSettings
from shared.definition import SagaDefinition
from shared.definitions import definition_named
from shared.read_model import ReadModel
from shared.services import Domain
from shared.settings import Settings, StoreKind
from shared.store import SchemaBehind, StoreFactory
from shared.store.factory import open_stores

NOTHING_TO_WATCH = (
    "no deployment to watch: set SAGA_TEMPORAL_ADDRESS and/or SAGA_NATS_URL (and the store"
    " settings), or run `saga-compare demo --monitor` for the embedded servers"
)


@asynccontextmanager
async def attached_board(settings: Settings, monitor: MonitorSettings) -> AsyncIterator[Board]:
    """A board over whichever styles the settings name, wired by each variant's composition
    root as a reader (nothing migrated or created); a ValueError when they name none."""
    if not settings.temporal_address and not settings.nats_url:
        raise ValueError(NOTHING_TO_WATCH)
    models: dict[str, ReadModel] = {}
    operators: dict[str, Operator] = {}
    domains: dict[str, Domain] = {}
    definition = definition_named(settings.definition)
    async with AsyncExitStack() as stack:
        if settings.temporal_address:
            temporal = TemporalSettings.from_settings(settings)
            client = await stack.enter_async_context(orchestration.reader(temporal))
            reads = untraced(client)  # the monitor's reads are not saga work
            models["orchestration"] = OrchestrationReadModel(reads, monitor.temporal_ui_url)
            operators["orchestration"] = SagaOperator(client)
            if settings.store is StoreKind.SQLITE or settings.postgres_url:
                # The worker's stores, for the semantic lock waits its points service holds
                # (never an embedded Postgres of the monitor's own: a reader starts nothing).
                worker = await stack.enter_async_context(
                    open_stores(settings.for_variant("orchestration"))
                )
                if points := await _points(stack, worker, definition):
                    domains["orchestration"] = points
        if settings.nats_url:
            # The choreography's own stores, as its processes keep them (Settings.for_variant).
            stores = await stack.enter_async_context(
                open_stores(settings.for_variant("choreography"))
            )
            nats = ChoreographySettings.from_settings(settings)
            watched = await stack.enter_async_context(choreography.reader(nats, stores, definition))
            models["choreography"] = ChoreographyReadModel(
                watched.orders.store, watched.bus.js, definition
            )
            operators["choreography"] = OperatorCommands(
                watched.bus, watched.tracker, consumer_suffix=nats.consumer_suffix
            )
            if points := await _points(stack, stores, definition):
                domains["choreography"] = points
        locks = lock_waits(domains)
        yield Board(models, monitor, operators, steps=definition.steps, locks=locks)


async def _points(
    stack: AsyncExitStack, stores: StoreFactory, definition: SagaDefinition
) -> Domain | None:
    """A style's points store, opened as a reader (nothing migrated) for the semantic lock waits
    the saga page shows; None when the monitor cannot see it (the worker keeps its stores where
    the monitor does not look, or the processes have not made it, or their code has no lock):
    that style is watched all the same, without lock waits."""
    domain = Domain(stores, definition)
    try:
        await domain.points.store.open(migrate=False)
    except SchemaBehind:
        return None
    stack.push_async_callback(domain.points.store.close)
    return domain
