"""Build the board from open runtimes: each variant's read API, and its operator methods."""

from __future__ import annotations

from collections.abc import Mapping

from choreography.read_model import ChoreographyReadModel
from choreography.runtime import ChoreographyRuntime
from monitor.board import Board, Locks, Operator
from monitor.settings import MonitorSettings
from orchestration.client import untraced
from orchestration.read_model import OrchestrationReadModel
from orchestration.runtime import OrchestrationRuntime
from shared.definition import SagaDefinition
from shared.read_model import ReadModel
from shared.services import Domain

RUNTIMES = (ChoreographyRuntime, OrchestrationRuntime)


def read_model(runtime: object, settings: MonitorSettings) -> ReadModel:
    """The read API of an open runtime (front door or embedded alike)."""
    if isinstance(runtime, ChoreographyRuntime):
        return ChoreographyReadModel(
            runtime.domain.orders.store, runtime.bus.js, runtime.domain.definition
        )
    if isinstance(runtime, OrchestrationRuntime):
        client = untraced(runtime.client)  # the monitor's reads are not saga work
        return OrchestrationReadModel(client, settings.temporal_ui_url or runtime.ui_url)
    raise TypeError(f"no read API for {type(runtime).__name__}")


def board_for(runtimes: Mapping[str, object], settings: MonitorSettings) -> Board:
    """Every runtime's read API; operator actions where the runtime offers them."""
    models = {name: read_model(runtime, settings) for name, runtime in runtimes.items()}
    operators = {name: r for name, r in runtimes.items() if isinstance(r, Operator)}
    steps = dict.fromkeys(s for runtime in runtimes.values() for s in _definition(runtime).steps)
    domains = {name: r.domain for name, r in runtimes.items() if isinstance(r, RUNTIMES)}
    return Board(models, settings, operators, steps=list(steps), locks=lock_waits(domains))


def lock_waits(domains: Mapping[str, Domain]) -> Locks:
    """Each style's semantic lock waits, read from its points service."""

    async def waiting(variant: str, saga_id: str) -> str | None:
        found = await domains[variant].points.waiting([saga_id]) if variant in domains else {}
        return str(found[saga_id]) if saga_id in found else None

    return waiting


def _definition(runtime: object) -> SagaDefinition:
    if isinstance(runtime, RUNTIMES):
        return runtime.domain.definition
    raise TypeError(f"no saga definition for {type(runtime).__name__}")
