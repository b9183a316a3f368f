"""The choreography variant as the harness drives it: sagas in through the front door only.

`open_runtime` builds the variant with `bootstrap`: an embedded nats-server unless the
settings name a URL, the streams and durables, and the process kinds chosen to run in this
process (default: all six — the five services and the tracker). Whatever runs where, sagas
start and end the same way: a command on NATS in, notices out (choreography/front_door.py);
with no kinds chosen this process is only a front door to services running elsewhere. The
services' stores are opened too, for seeding a run's own catalogue and reading final state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from choreography.access import FRONT
from choreography.bootstrap import Choreography, bootstrap
from choreography.bus import Bus
from choreography.front_door import FrontDoor
from choreography.host import TRACKER, ChoreographySettings, Host, kinds_of_process
from choreography.operator import OperatorCommands, acting_on
from choreography.tracker import Intervention, Tracker
from shared.admission import Admission
from shared.contracts import (
    Action,
    ActionResult,
    OperatorAction,
    OrderRequest,
    SagaOutcome,
    SagaPolicy,
)
from shared.countermeasures import DEFAULT, Countermeasures
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.services import Domain
from shared.store import StoreFactory, sqlite_stores
from shared.telemetry import Tracing
from shared.validation import load_settings

__all__ = ["ChoreographyRuntime", "ChoreographySettings", "open_runtime"]

VARIANT = "choreography"
PLACE_TIMEOUT_S = 60.0
"""How long a start waits for the orders service to place the order (it may be restarting)."""
OPERATOR_WAIT_S = 300.0
"""How long an operator's retry may take before the call gives up waiting (it goes on)."""


class ChoreographyRuntime:
    """SagaRuntime over NATS JetStream: sagas advance by events between the services."""

    variant = VARIANT

    def __init__(self, app: Choreography, front: FrontDoor) -> None:
        self.app = app
        self.front = front

    @property
    def domain(self) -> Domain:
        return self.app.domain

    @property
    def tracker(self) -> Tracker:
        return self.app.tracker

    @property
    def bus(self) -> Bus:
        return self.app.bus

    @property
    def settings(self) -> ChoreographySettings:
        return self.app.settings

    @property
    def nats_url(self) -> str:
        """The broker's address, with the front door's user in it when it logs in (a client
        given only this URL, the benchmark's floor, connects as the front door)."""
        url = self.app.servers[0]
        login = self.settings.nats.login_for(FRONT)
        if login is None:
            return url
        parts = urlsplit(url)
        netloc = f"{quote(login.user)}:{quote(login.password)}@{parts.netloc.rsplit('@', 1)[-1]}"
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def hosts(self) -> dict[str, Host]:
        return dict(self.app.hosts)

    async def submit(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Hand the saga to the deployment: returns once JetStream holds the place command.

        An order the live catalogue or customer records contradict, or a policy beyond the
        limits, is refused here first (Inadmissible), read through the services' own stores;
        the orders service's desk judges it again.
        """
        await Admission(self.domain, self.settings.limits).check(order, policy)
        await self.front.place(saga_id, order, policy)

    async def start_saga(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Submit, then wait until the orders service placed the order (or refused it)."""
        await self.submit(saga_id, order, policy)
        await self.front.until_placed(saga_id, PLACE_TIMEOUT_S)

    async def cancel_saga(self, saga_id: str) -> None:
        """The customer's cancel: ``order.cancel_requested`` unless past the pivot."""
        await self.front.cancel(saga_id)

    async def describe(self, saga_id: str) -> SagaOutcome:
        return await self.tracker.describe(saga_id)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        return await self.front.until_ended(saga_id, timeout_s)

    async def interventions(self) -> list[Intervention]:
        return await self.tracker.interventions()

    async def retry_compensation(
        self, saga_id: str, who: str, timeout_s: float = OPERATOR_WAIT_S
    ) -> OperatorAction:
        """An operator retries the saga's failed compensations; returns what came of it.

        Without the tracker in this process (a front door to a deployment) the action is an
        operator command the tracker's process carries out (choreography/operator.py).
        """
        return await self._retry(Action.RETRY_COMPENSATION, saga_id, who, timeout_s)

    async def retry_step(
        self, saga_id: str, who: str, timeout_s: float = OPERATOR_WAIT_S
    ) -> OperatorAction:
        """An operator runs the saga's failed step past the pivot again; returns what came of
        it (over operator commands when the tracker runs elsewhere, as `retry_compensation`)."""
        return await self._retry(Action.RETRY_STEP, saga_id, who, timeout_s)

    async def _retry(
        self, kind: Action, saga_id: str, who: str, timeout_s: float
    ) -> OperatorAction:
        """A retry of either kind, here or through the tracker's process; its result."""
        commands = self._commands(timeout_s)
        if commands is not None:
            return await commands.retry(kind, saga_id, who)
        retry = (
            self.tracker.retry_step
            if kind is Action.RETRY_STEP
            else self.tracker.retry_compensation
        )
        async with acting_on(self.tracker.store, saga_id, kind.value):
            action = await retry(saga_id, who)
        if action.result is not ActionResult.PENDING:
            return action
        index = len((await self.tracker.describe(saga_id)).actions) - 1
        return await self.tracker.wait_action(saga_id, index, timeout_s)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """An operator marks the saga resolved by hand, with a note."""
        commands = self._commands(OPERATOR_WAIT_S)
        if commands is not None:
            return await commands.resolve(saga_id, who, note)
        async with acting_on(self.tracker.store, saga_id, "resolve"):
            return await self.tracker.resolve(saga_id, who, note)

    def _commands(self, timeout_s: float) -> OperatorCommands | None:
        """Operator commands over NATS when the tracker runs elsewhere; None when it is here."""
        if TRACKER in self.app.hosts:
            return None
        suffix = self.settings.consumer_suffix
        return OperatorCommands(
            self.bus, self.tracker, consumer_suffix=suffix, result_timeout_s=timeout_s
        )

    def host(self, kind: str) -> Host:
        return self.app.hosts[kind]


@asynccontextmanager
async def open_runtime(
    data_dir: Path,
    definition: SagaDefinition,
    *,
    settings: ChoreographySettings | None = None,
    tracing: Tracing | None = None,
    services: Iterable[str] | None = None,
    broker_state_dir: Path | None = None,
    stores: StoreFactory | None = None,
    hooks: Hooks = NO_HOOKS,
    countermeasures: Countermeasures = DEFAULT,
) -> AsyncIterator[ChoreographyRuntime]:
    """Yield a ready runtime; what it started is stopped when the block ends.

    ``services``: the process kinds run in this process (default: the definition's services
    and the tracker); pass ``()`` when they run as separate processes. The stores come from
    ``stores`` (default: one SQLite file per service in ``data_dir``). The hosts here run
    their steps and publishes through ``hooks`` (none in production); the services apply
    ``countermeasures`` (the isolation switches, docs/anomalies.md).
    """
    settings = settings or ChoreographySettings.from_settings(load_settings())
    kinds = list(kinds_of_process(definition)) if services is None else [str(s) for s in services]
    async with bootstrap(
        settings,
        stores or sqlite_stores(data_dir),
        definition,
        kinds=kinds,
        every_store=True,
        broker_state_dir=broker_state_dir,
        hooks=hooks,
        countermeasures=countermeasures,
    ) as app:
        front = FrontDoor(app.bus, app.tracker)
        await front.start()
        try:
            yield ChoreographyRuntime(app, front)
        finally:
            await front.stop()
            if tracing is not None:
                tracing.flush()
