"""One cell of the versioning matrix: one arm per style, one strategy, on a running deployment.

1. Start version 1 of the saga in its own processes — one choreography process (every kind)
   and one worker, on a task queue and durables of the cell's own — with the cell's arms.
2. Park N version-1 sagas per position in each style (holds, harness/versioning/positions.py)
   and wait until every one waits at its step.
3. Upgrade to version 2 (harness/versioning/upgrade.py): a swap, or a rolling upgrade whose
   old release stops once drained — every v1 saga ended, or the open ones cannot move any
   more while it runs (observe.STUCK_WHILE_OLD_RUNS) — or its window ran out. The holds are
   released once the new release runs (a swap) or when it starts beside the old one (rolling).
4. Watch until every saga ended or the open ones cannot move any more, the old release being
   gone (observe.STUCK_FOR_GOOD); nothing moved for ``quiet_s`` or the bound ran out are the
   upper bounds. Then start version 2's own sagas to see it works, and measure
   (`VariantResult`).
5. Stop the cell's processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowExecutionStatus

from choreography.access import ADMIN
from choreography.broker import SAGA_STREAM, NatsLogin
from choreography.bus import Bus
from choreography.runtime import ChoreographyRuntime
from choreography.versions import Reader
from harness.compare.invariants import check_invariants
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.root_span import root_span_name
from harness.compare.runner import new_run_tag
from harness.deploy import control
from harness.deploy.attach import open_front_door
from harness.deploy.deployment import CHOREOGRAPHY, ORCHESTRATION
from harness.deploy.topology import Topology
from harness.variants import VARIANTS
from harness.versioning import observe
from harness.versioning.positions import (
    CROSSING,
    FRESH,
    LIMITS,
    POLICY,
    POSITIONS,
    SEED,
    Fresh,
    Position,
)
from harness.versioning.upgrade import Arms, Strategy, UpgradeLog, upgrade
from orchestration.runtime import OrchestrationRuntime
from orchestration.versioning import build_id, versioned
from shared.contracts import OrderRequest, SagaOutcome, SagaStatus, StepState
from shared.definition import SagaDefinition
from shared.definitions import ORDERS_V1, definition_named
from shared.faults.deployment import PLANS, SIGNALS
from shared.faults.plan import released
from shared.faults.sources import DirectoryPlans, DirectorySignals
from shared.runtime import SagaRuntime
from shared.saga import SagaSpec
from shared.services import Domain
from shared.settings import EventVersioning, WorkflowVersioning
from shared.telemetry import SAGA_ID, SAGA_ORDER_ID, SAGA_VARIANT, Tracing

START_AT_ONCE = 8
PARK_BOUND_S = 240.0
FRESH_WAIT_S = 60.0
V2 = "v2"
STUCK = "stuck: "

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CellSpec:
    """What one cell runs: the arms, the strategy, how many sagas, how long it may take."""

    workflow: WorkflowVersioning
    events: EventVersioning
    strategy: Strategy
    per_position: int
    quiet_s: float = 20.0
    """Released sagas that have not moved for this long are counted stuck (an upper bound:
    the watch ends sooner once each open saga is stuck on a cause for good)."""
    bound_s: float = 180.0
    window_s: float = 60.0
    """Rolling: how long the old release may take to drain before it is stopped anyway."""

    @property
    def name(self) -> str:
        return f"{self.workflow}+{self.events} {self.strategy}"

    @property
    def slug(self) -> str:
        return f"{self.workflow}-{self.events}-{self.strategy}"

    def arm(self, variant: str) -> str:
        return self.workflow if variant == ORCHESTRATION else self.events


NEW_GROUP = Reader(definition_named(V2), "dual-publish").durable_suffix
"""What version 2's own consumer group's durables end with (dual publishing)."""


def old_group(durable: str) -> bool:
    """A durable of version 1's consumer group (every durable, but for dual publishing's)."""
    return not durable.endswith(NEW_GROUP)


class SagaResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    saga_id: str
    position: str
    expected: str
    ended: str
    """Its end (``COMPENSATED/shipment_failed``), or ``stuck: <cause>``."""
    right: bool
    """Its status and reason are those it would have reached without an upgrade."""
    recorded_right: bool = True
    """Its outcome lists its own version's steps (not version 2's fraud check)."""
    ended_s: float | None = None
    """Seconds from the release to its end."""
    steps: list[str] = Field(default_factory=list)
    """The steps its outcome lists (a v1 saga must not list version 2's fraud check)."""


class Action(BaseModel):
    """What a person must do: once for the deployment, or ``times`` times (once per saga)."""

    model_config = ConfigDict(frozen=True)

    text: str
    times: int = 1


class VariantResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    variant: str
    arm: str
    sagas: list[SagaResult]
    right: int
    misrecorded: int = 0
    """Sagas whose outcome, as version 2 reads it, lists steps of another version."""
    invariants_violated: list[str]
    stuck: dict[str, int]
    dead_letters: int
    dead_letter_reasons: dict[str, int]
    operator_actions: list[Action]
    v1_gone_s: float | None
    """Seconds from the upgrade's start until no v1 saga was left open (None: some never
    ended); each saga's own ``ended_s`` counts from the release of the holds."""
    fresh: list[SagaResult]
    crossing: str | None = None
    """A saga parked at the crossing position, for its swimlanes."""
    watch_ended: list[str] = Field(default_factory=list)
    """How each watch of these v1 sagas ended, in order — a rolling upgrade's drain, then the
    watch after the release: every saga ended, the open ones could not move any more, nothing
    moved for ``quiet_s``, or the bound (harness/versioning/observe.py)."""

    @property
    def share(self) -> float:
        return self.right / len(self.sagas) if self.sagas else 0.0


class CellResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    workflow: str
    events: str
    strategy: str
    per_position: int
    tag: str
    upgrade: UpgradeLog
    released_at: float
    started_at: float
    finished_at: float
    variants: list[VariantResult]
    traces: str | None = None


@dataclass
class Parked:
    """A v1 saga the cell started, its order and position, and its root span."""

    saga_id: str
    variant: str
    order: OrderRequest
    position: Position
    root: trace.Span


async def run_cell(
    found: Topology,
    spec: CellSpec,
    tracing: Tracing,
    trace_dir: Path | None,
    progress: Progress = lambda line: None,
) -> CellResult:
    """Run one cell (see the module docstring) on a deployment started with ``--chaos``."""
    assert found.faults_dir is not None
    tag = new_run_tag()
    traces = trace_dir / f"{spec.slug}-{tag}.jsonl" if trace_dir is not None else None
    started = time.time()
    await control.request(found.control, "definition", name="v1")
    cell = _Cell(found, spec, tag, traces)
    with tracing.exporting(jsonl=traces) if traces is not None else contextlib.nullcontext():
        async with cell.v1_release(progress):
            result = await cell.run(tracing, progress)
    return result.model_copy(update={"started_at": started, "finished_at": time.time()})


class _Cell:
    def __init__(self, found: Topology, spec: CellSpec, tag: str, traces: Path | None) -> None:
        assert found.faults_dir is not None
        self.found = found
        self.spec = spec
        self.tag = tag
        self.traces = traces
        self.namespace = Namespace(tag)
        self.queue = f"saga-orders-{tag}"
        self.plans = DirectoryPlans(found.faults_dir / PLANS)
        self.signals = DirectorySignals(found.faults_dir / SIGNALS)
        self.kinds = {CHOREOGRAPHY: f"c-{tag}", ORCHESTRATION: f"w-{tag}"}
        self.tracer = trace.get_tracer("saga-compare.versioning")

    # -- processes ------------------------------------------------------------------------

    def env(self, variant: str) -> dict[str, str]:
        env = {
            "SAGA_DEFINITION": "v1",
            "SAGA_TEMPORAL_TASK_QUEUE": self.queue,
            "SAGA_WORKFLOW_VERSIONING": self.spec.workflow,
            "SAGA_EVENT_VERSIONING": self.spec.events,
        }
        env.update({f"SAGA_{name.upper()}": f"{value:g}" for name, value in LIMITS.items()})
        if self.found.nats_users is not None:  # each kind of the process logs in as itself
            env["SAGA_NATS_LOGINS_DIR"] = str(self.found.nats_users)
        if self.traces is not None:
            env["SAGA_TRACE_FILE"] = str(self.traces)
        return env

    @asynccontextmanager
    async def v1_release(self, progress: Progress) -> AsyncIterator[None]:
        """The cell's version-1 processes; every process of the cell is stopped after."""
        progress(f"{self.spec.name}: starting version 1 ...")
        spawns = {
            CHOREOGRAPHY: ("orders", ["choreography", "--service", "all"]),
            ORCHESTRATION: ("worker", ["orchestration.worker"]),
        }
        await asyncio.gather(
            *(
                control.request(
                    self.found.control,
                    "spawn",
                    wait_s=120.0,
                    kind=self.kinds[variant],
                    like=like,
                    args=args,
                    env=self.env(variant),
                )
                for variant, (like, args) in spawns.items()
            )
        )
        try:
            yield
        finally:
            answer = await control.request(self.found.control, "members")
            ours = [k for k in answer.get("members", {}) if self.tag in k]
            await asyncio.gather(
                *(control.request(self.found.control, "retire", kind=k) for k in ours)
            )
            await self.forget_durables()

    async def forget_durables(self) -> None:
        """The cell's durables go with its processes (as the broker's admin): the next cell's
        start fresh (new messages only), as if on a broker of their own; the deployment's
        users may pull only from the durables named like its process kinds', so cells share
        those names rather than each having its own."""
        settings = self.found.settings(CHOREOGRAPHY, ADMIN)
        login = None
        if settings.nats_user and settings.nats_password:
            login = NatsLogin(settings.nats_user, settings.nats_password.get_secret_value())
        admin = await Bus.connect(settings.nats_servers, f"versioning-{self.tag}-admin", login)
        try:
            for info in await admin.js.consumers_info(SAGA_STREAM):
                if info.config.durable_name:
                    await admin.js.delete_consumer(SAGA_STREAM, info.config.durable_name)
        finally:
            await admin.close()

    # -- front doors ------------------------------------------------------------------------

    @asynccontextmanager
    async def front_doors(
        self, tracing: Tracing, definition: SagaDefinition
    ) -> AsyncIterator[dict[str, SagaRuntime]]:
        async with AsyncExitStack() as stack:
            doors: dict[str, SagaRuntime] = {}
            for variant in VARIANTS:
                settings = self.found.settings(variant).model_copy(
                    update={
                        **LIMITS,
                        "temporal_task_queue": self.queue,
                        "event_versioning": self.spec.events,
                        "workflow_versioning": self.spec.workflow,
                        "definition": "v1" if definition is ORDERS_V1 else V2,
                    }
                )
                doors[variant] = await stack.enter_async_context(
                    open_front_door(variant, settings, tracing, definition)
                )
            yield doors

    # -- the run --------------------------------------------------------------------------

    async def run(self, tracing: Tracing, progress: Progress) -> CellResult:
        spec = self.spec
        async with self.front_doors(tracing, ORDERS_V1) as doors:
            for runtime in doors.values():
                await seed_namespace(runtime.domain, self.namespace, SEED)
            count = len(POSITIONS) * spec.per_position
            progress(f"{spec.name}: parking {count} version-1 sagas per style ...")
            parked = await self.park(doors)
            await self.until_parked(doors, parked)
            watches = {
                v: observe.Watch([p.saga_id for p in parked if p.variant == v]) for v in doors
            }
            released_at = 0.0

            async def release() -> None:
                nonlocal released_at
                self.signals.give(released(self.tag))
                released_at = time.time()

            async def drain() -> None:
                await release()
                await self.settle(doors, watches, bound_s=spec.window_s, window=True)

            log = await upgrade(
                self.found,
                V2,
                spec.strategy,
                Arms(spec.workflow, spec.events),
                drain=drain,
                progress=progress,
            )
            if spec.strategy == "swap":
                await release()
            progress(f"{spec.name}: released; watching ...")
            await self.settle(doors, watches, bound_s=spec.bound_s, window=False)
        # Read back as version 2's code reads (the tracker's views, the workflows' results).
        async with self.front_doors(tracing, definition_named(V2)) as fresh_doors:
            read = [self.results(fresh_doors[v], parked, watches[v], released_at) for v in VARIANTS]
            results = dict(zip(VARIANTS, await asyncio.gather(*read), strict=True))
            for item in parked:
                item.root.end()
            progress(f"{spec.name}: version 2's own sagas ...")
            ran = await asyncio.gather(*(self.fresh(fresh_doors[v]) for v in VARIANTS))
            fresh = dict(zip(VARIANTS, ran, strict=True))
            variants = [
                await self.measure(fresh_doors[v], results[v], fresh[v], watches[v], log)
                for v in VARIANTS
            ]
        return CellResult(
            workflow=spec.workflow,
            events=spec.events,
            strategy=spec.strategy,
            per_position=spec.per_position,
            tag=self.tag,
            upgrade=log,
            released_at=released_at,
            started_at=0.0,
            finished_at=0.0,
            variants=variants,
            traces=self.traces.name if self.traces is not None else None,
        )

    async def park(self, doors: dict[str, SagaRuntime]) -> list[Parked]:
        """Start every v1 saga held at its position (a few at a time)."""
        gate = asyncio.Semaphore(START_AT_ONCE)
        todo = [
            (variant, position, index)
            for variant in doors
            for number, position in enumerate(POSITIONS)
            for index in range(self.spec.per_position)
        ]

        async def one(variant: str, position: Position, index: int) -> Parked:
            number = POSITIONS.index(position)
            plain = position.order(f"p{number}-{index}")
            order = self.namespace.order(plain)
            saga_id = order.order_id
            attributes = {SAGA_ID: saga_id, SAGA_VARIANT: variant, SAGA_ORDER_ID: plain.order_id}
            name = root_span_name(variant, plain.order_id)
            root = self.tracer.start_span(name, attributes=attributes)
            async with gate:
                self.plans.install(saga_id, position.plan(self.tag))
                with trace.use_span(root, end_on_exit=False):
                    await doors[variant].start_saga(saga_id, order, POLICY)
            return Parked(saga_id, variant, plain, position, root)

        return list(await asyncio.gather(*(one(*item) for item in todo)))

    async def statuses(self, runtime: SagaRuntime, saga_ids: list[str]) -> dict[str, str]:
        if isinstance(runtime, ChoreographyRuntime):
            orders = runtime.domain.orders.store
            return await observe.choreography_statuses(orders, saga_ids)
        assert isinstance(runtime, OrchestrationRuntime)
        return await observe.orchestration_statuses(runtime.client, self.queue)

    async def until_parked(self, doors: dict[str, SagaRuntime], parked: list[Parked]) -> None:
        """Every saga waits at its held step (it is that step's turn and the step runs)."""
        deadline = time.monotonic() + PARK_BOUND_S
        for variant, runtime in doors.items():
            mine = {p.saga_id: p.position.step for p in parked if p.variant == variant}
            while True:
                seen = await self.statuses(runtime, list(mine))
                waiting = [
                    s for s, step in mine.items() if not seen.get(s, "").endswith(f":{step}")
                ]
                if not waiting:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{variant}: {len(waiting)} sagas never reached their hold "
                        f"(first: {waiting[0]}, seen {seen.get(waiting[0])})"
                    )
                await asyncio.sleep(0.5)

    async def settle(
        self,
        doors: dict[str, SagaRuntime],
        watches: dict[str, observe.Watch],
        *,
        bound_s: float,
        window: bool,
    ) -> None:
        """Watch both styles until their v1 sagas ended or cannot move any more, or (upper
        bounds) stopped moving or the bound. ``window``: a rolling upgrade's drain, the old
        release still running — no quiet period then, only the window (``bound_s``)."""

        async def one(variant: str) -> None:
            watch = watches[variant]

            async def poll() -> dict[str, str]:
                return await self.statuses(doors[variant], watch.saga_ids)

            quiet = bound_s if window else self.spec.quiet_s
            watch.changed_at = time.time()
            rule = self.stuck_rule(doors[variant], window=window)
            await observe.until_settled(watch, poll, quiet_s=quiet, bound_s=bound_s, settled=rule)

        await asyncio.gather(*(one(v) for v in doors))

    def stuck_rule(self, runtime: SagaRuntime, *, window: bool) -> observe.Settled | None:
        """When a style's open v1 sagas cannot move any more (observe.stuck_rule): during a
        rolling window only a dead letter with nothing in flight counts, so the orchestration
        has no rule then (a v1 worker may still run any open workflow)."""
        if isinstance(runtime, OrchestrationRuntime):
            if window:
                return None
            client = runtime.client
            gone = build_id(ORDERS_V1) if versioned(self.spec.workflow) else None

            async def workflows(saga_ids: list[str]) -> dict[str, str]:
                return await observe.workflow_causes(client, saga_ids, gone)

            return observe.stuck_rule(workflows, old_release_running=False)
        assert isinstance(runtime, ChoreographyRuntime)
        js = runtime.bus.js
        # With a consumer group of its own (dual publishing) the new release leaves the old
        # group to nobody once the old release stopped; else it took the durables over.
        own_group = bool(Reader(definition_named(V2), self.spec.events).durable_suffix)
        unread = old_group if own_group and not window else None

        async def events(saga_ids: list[str]) -> dict[str, str]:
            return await observe.choreography_causes(js, saga_ids, unread)

        in_flight = observe.InFlight(js, unread)
        return observe.stuck_rule(events, old_release_running=window, in_flight=in_flight)

    async def results(
        self,
        runtime: SagaRuntime,
        parked: list[Parked],
        watch: observe.Watch,
        released_at: float,
    ) -> list[tuple[Parked, SagaResult, SagaOutcome | None]]:
        found = []
        for item in (p for p in parked if p.variant == runtime.variant):
            expected = _label(item.position.status, item.position.reason)
            ended_at = watch.ended_at.get(item.saga_id)
            outcome: SagaOutcome | None = None
            if ended_at is not None:
                outcome = await outcome_of(runtime, item.saga_id)
                item.root.set_attribute("saga.outcome", outcome.status.value)
                ended = _label(outcome.status, outcome.reason)
            else:
                ended = f"{STUCK}{await self.stuck_reason(runtime, item.saga_id)}"
            steps = [s.step for s in outcome.steps] if outcome is not None else []
            result = SagaResult(
                saga_id=item.saga_id,
                position=item.position.name,
                expected=expected,
                ended=ended,
                right=ended == expected,
                recorded_right=all(s in _V1_STEPS for s in steps),
                ended_s=round(ended_at - released_at, 3) if ended_at is not None else None,
                steps=steps,
            )
            found.append((item, result, outcome))
        return found

    async def stuck_reason(self, runtime: SagaRuntime, saga_id: str) -> str:
        if isinstance(runtime, OrchestrationRuntime):
            return await observe.workflow_stuck_reason(runtime.client, saga_id)
        assert isinstance(runtime, ChoreographyRuntime)
        letters = await observe.dead_letters(runtime.bus.js, [saga_id])
        if letters:
            return observe.DEAD_LETTERED
        # The old release's group (its durables lack the new release's suffix): after a
        # swap with dual publishing nobody reads it, and what it holds never moves.
        if await observe.unread_group_holding(runtime.bus.js, old_group, saga_id):
            return observe.UNREAD
        return observe.WAITING

    async def fresh(
        self, runtime: SagaRuntime
    ) -> list[tuple[OrderRequest, SagaResult, SagaOutcome | None]]:
        """Version 2's own sagas, one of each kind, side by side, after the upgrade."""
        started = (self._fresh(runtime, number, case) for number, case in enumerate(FRESH))
        return list(await asyncio.gather(*started))

    async def _fresh(
        self, runtime: SagaRuntime, number: int, case: Fresh
    ) -> tuple[OrderRequest, SagaResult, SagaOutcome | None]:
        """One of version 2's own sagas: started, waited for, and its end against the one it
        must reach (a release that cannot run it is recorded, not raised)."""
        plain = case.order(f"fresh{number}")
        order = self.namespace.order(plain)
        expected = _label(case.status, case.reason)
        outcome: SagaOutcome | None = None
        try:
            await runtime.start_saga(order.order_id, order, POLICY)
            outcome = await runtime.wait(order.order_id, FRESH_WAIT_S)
            ended = _label(outcome.status, outcome.reason)
            steps = [s.step for s in outcome.steps]
        except Exception as error:  # a release that cannot run its own sagas: recorded
            ended, steps = f"failed: {type(error).__name__}: {error}"[:200], []
        result = SagaResult(
            saga_id=order.order_id,
            position=case.name,
            expected=expected,
            ended=ended,
            right=ended == expected,
            steps=steps,
        )
        return plain, result, outcome

    async def measure(
        self,
        runtime: SagaRuntime,
        results: list[tuple[Parked, SagaResult, SagaOutcome | None]],
        fresh: list[tuple[OrderRequest, SagaResult, SagaOutcome | None]],
        watch: observe.Watch,
        log: UpgradeLog,
    ) -> VariantResult:
        variant = runtime.variant
        sagas = [r for _, r, _ in results]
        domain = runtime.domain
        pairs = [
            (item.order, await effects_of(domain, item.saga_id, ORDERS_V1.spec))
            for item, _, _ in results
        ]
        v2 = domain.definition.spec
        pairs += [(o, await effects_of(domain, r.saga_id, v2)) for o, r, _ in fresh]
        state = self.namespace.restrict(await domain.snapshot())
        verdicts = check_invariants(runtime.domain.definition, SEED, state, pairs)
        violated = [n for n, held in verdicts.items() if not held and n != "every_saga_settled"]
        stuck = Counter(
            r.ended.removeprefix("stuck: ") for r in sagas if r.ended.startswith("stuck")
        )
        letters: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        if isinstance(runtime, ChoreographyRuntime):
            ids = [r.saga_id for r in sagas]
            letters = await observe.dead_letters(runtime.bus.js, ids)
            reasons = await observe.dead_letter_reasons(runtime.bus.js, ids)
        ended = [watch.ended_at[s] for s in watch.saga_ids if s in watch.ended_at]
        all_ended = len(ended) == len(watch.saga_ids)
        crossing = next(
            (r.saga_id for r in sagas if r.position == CROSSING and r.right),
            next((r.saga_id for r in sagas if r.position == CROSSING), None),
        )
        return VariantResult(
            variant=variant,
            arm=self.spec.arm(variant),
            sagas=sagas,
            right=sum(1 for r in sagas if r.right),
            misrecorded=sum(1 for r in sagas if not r.recorded_right),
            invariants_violated=violated,
            stuck=dict(stuck),
            dead_letters=sum(letters.values()),
            dead_letter_reasons=dict(reasons),
            operator_actions=operator_actions(variant, sagas, stuck),
            v1_gone_s=round(max(ended) - log.started_at, 2) if all_ended and ended else None,
            fresh=[result for _, result, _ in fresh],
            crossing=crossing,
            watch_ended=list(watch.ended_by),
        )


_V1_STEPS = frozenset(ORDERS_V1.steps)


async def outcome_of(runtime: SagaRuntime, saga_id: str) -> SagaOutcome:
    """An ended saga's outcome. A closed workflow's is its result, read from its history: a
    query would need a worker of its version, gone after a pinned version drained."""
    if isinstance(runtime, OrchestrationRuntime):
        handle = runtime.client.get_workflow_handle(saga_id, result_type=SagaOutcome)
        description = await handle.describe()
        if description.status is WorkflowExecutionStatus.COMPLETED:
            result: SagaOutcome = await handle.result()
            return result
    return await runtime.describe(saga_id)


async def effects_of(domain: Domain, saga_id: str, spec: SagaSpec) -> SagaOutcome:
    """What a saga left, from the services' own step logs (a stuck workflow cannot be asked,
    and a saga's engine may be wrong about it): the invariants are checked against these."""
    steps = []
    for name in (*spec.forward_steps, *spec.compensations):
        status = await domain.service_of(name).step_status(saga_id, name)
        if status is not None:
            steps.append(StepState(step=name, phase=spec.phase_of(name), status=status))
    return SagaOutcome(saga_id=saga_id, order_id=saga_id, status=SagaStatus.RUNNING, steps=steps)


def _label(status: SagaStatus, reason: object) -> str:
    return f"{status.value}/{reason}" if reason else status.value


def operator_actions(
    variant: str, sagas: Iterable[SagaResult], stuck: Counter[str]
) -> list[Action]:
    """What a person has to do so that every saga ends: per deployment, or per saga."""
    actions: list[Action] = []
    if stuck.get(observe.NONDETERMINISM):
        actions.append(
            Action(
                text="deploy workers running the patched workflow code (or the v1 workers "
                f"again): the {stuck[observe.NONDETERMINISM]} failing workflow tasks then retry "
                "by themselves"
            )
        )
    if stuck.get(observe.NO_WORKER):
        actions.append(
            Action(
                text=f"run the v1 workers again until their version drains "
                f"({stuck[observe.NO_WORKER]} sagas are pinned to it)"
            )
        )
    if stuck.get(observe.REFUSED):
        actions.append(Action(text=f"run workers holding v1 ({stuck[observe.REFUSED]} refused)"))
    if stuck.get(observe.UNREAD):
        actions.append(
            Action(
                text="run the old release's processes again until its sagas drain (its consumer "
                f"group holds the events of {stuck[observe.UNREAD]} sagas)"
            )
        )
    if stuck.get(observe.DEAD_LETTERED):
        what = "re-publish the saga's dead letters once a consumer reads them"
        actions.append(Action(text=what, times=stuck[observe.DEAD_LETTERED]))
    if stuck.get(observe.WAITING):
        what = "find what the saga waits for and finish it by hand"
        actions.append(Action(text=what, times=stuck[observe.WAITING]))
    interventions = sum(1 for s in sagas if s.ended.startswith("NEEDS_INTERVENTION"))
    if interventions:
        what = "retry or resolve a saga waiting for an operator"
        actions.append(Action(text=what, times=interventions))
    return actions


def action_count(result: VariantResult) -> int:
    return sum(action.times for action in result.operator_actions)
