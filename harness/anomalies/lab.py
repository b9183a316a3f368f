"""The lab's driver: a runtime per style and setting, a scenario's interleaving run on it.

A lab runtime is a variant's own runtime built as a deployment builds it — through its composition
root, with the services' countermeasures given there — plus the harness's middleware at the step
seam: the `Witness` outside, the fault injector (its holds force the interleaving), the `Recorder`
inside. A scenario runs in a namespace of its own (ids suffixed by a run tag), so one runtime
serves many runs; each saga runs under the harness's root span, as the comparison's do, so its
swimlanes can be drawn from the trace file.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from opentelemetry import trace

from harness.anomalies import scenarios as sc
from harness.anomalies.checker import check
from harness.anomalies.history import Entry, History
from harness.anomalies.invariants import Settled, violations
from harness.anomalies.kinds import Finding
from harness.anomalies.results import CellRun, SagaEnd
from harness.anomalies.seams import Recorder, Witness, entered, late
from harness.compare.faulty import Faulty
from harness.compare.namespace import Namespace, seed_namespace
from harness.compare.root_span import SAGA_REPEAT, root_span_name
from harness.compare.runner import new_run_tag
from harness.session import runtime_factory
from shared import faults
from shared.contracts import BusinessState, SagaOutcome, StepStatus
from shared.definitions import definition_named
from shared.faults import FaultInjector, MemoryPlans, Signals, released
from shared.hooks import Hooks
from shared.runtime import SagaRuntime
from shared.store import StoreFactory
from shared.telemetry import (
    SAGA_ID,
    SAGA_ORDER_ID,
    SAGA_OUTCOME,
    SAGA_REASON,
    SAGA_SCENARIO,
    SAGA_VARIANT,
    Tracing,
)

_tracer = trace.get_tracer("saga-compare.harness")

Places = Callable[[str, str], StoreFactory]
"""Where a lab runtime keeps its stores: ``(variant, setting slug) -> StoreFactory``."""
TIMEOUT_S = 90.0
"""A scenario that has not settled by then is stuck (a run takes seconds)."""


@dataclass
class LabRuntime:
    """One style with one setting's services, and the harness's view of it."""

    variant: str
    driven: Faulty[SagaRuntime]
    signals: Signals
    history: History
    witness: Witness
    recorder: Recorder

    @property
    def runtime(self) -> SagaRuntime:
        return self.driven.runtime


def slug(setting: sc.Setting) -> str:
    """A folder or schema name for what the services of a setting run with."""
    text = f"{setting.definition}_{setting.countermeasures.text or 'defaults'}"
    return "".join(c if c.isalnum() else "_" for c in text.lower())


@asynccontextmanager
async def open_lab(
    variant: str,
    setting: sc.Setting,
    places: Places,
    data_dir: Path,
    tracing: Tracing | None = None,
) -> AsyncIterator[LabRuntime]:
    """The variant's runtime with the setting's countermeasures and the lab's middleware."""
    board, signals, history = MemoryPlans(), Signals(), History(variant)
    injector = FaultInjector.for_variant(variant, board, signals)
    witness, recorder = Witness(signals), Recorder(history, signals)
    injected = faults.hooks(injector)
    hooks = Hooks(step=(witness, *injected.step, recorder), publish=injected.publish)
    options: dict[str, object] = {"tracing": tracing} if tracing is not None else {}
    async with runtime_factory(variant)(
        data_dir / variant / slug(setting),
        definition_named(setting.definition),
        stores=places(variant, slug(setting)),
        hooks=hooks,
        countermeasures=setting.countermeasures,
        **options,
    ) as runtime:
        yield LabRuntime(variant, Faulty(runtime, board), signals, history, witness, recorder)


class Labs:
    """Lab runtimes opened on first use and kept until `close`: one per style and per what
    the services run with (cells of several anomalies may share one)."""

    def __init__(self, places: Places, data_dir: Path, tracing: Tracing | None = None) -> None:
        self.places = places
        self.data_dir = data_dir
        self.tracing = tracing
        self._stack = AsyncExitStack()
        self._open: dict[tuple[str, str], LabRuntime] = {}

    async def get(self, variant: str, setting: sc.Setting) -> LabRuntime:
        key = (variant, slug(setting))
        if key not in self._open:
            opened = open_lab(variant, setting, self.places, self.data_dir, self.tracing)
            self._open[key] = await self._stack.enter_async_context(opened)
        return self._open[key]

    async def close(self) -> None:
        """Stop every runtime opened (their servers and stores)."""
        await self._stack.aclose()
        self._open.clear()


@dataclass(frozen=True)
class Cast:
    """A run's sagas: letter -> saga id, in its namespace."""

    namespace: Namespace
    ids: dict[str, str]

    def signal(self, template: str) -> str:
        for letter, saga_id in self.ids.items():
            template = template.replace(f"{{{letter}}}", saga_id)
        return template


async def run_cell(
    lab: LabRuntime, scenario: sc.Scenario, setting: sc.Setting, timeout_s: float = TIMEOUT_S
) -> CellRun:
    """The scenario's interleaving on this runtime, checked by history and by invariants."""
    domain = lab.runtime.domain
    namespace = Namespace(new_run_tag())
    await seed_namespace(domain, namespace, sc.SEED)
    cast = Cast(namespace, {s.letter: namespace.saga_id(s.letter) for s in scenario.sagas})
    began = time.time()
    async with asyncio.timeout(timeout_s):
        ends = await _interleave(lab, scenario, setting, cast, timeout_s)
        await lab.witness.until_quiet(cast.ids.values(), timeout_s)
        await _views_settled(lab, cast, timeout_s)
    state = namespace.restrict(await domain.snapshot())
    entries = lab.history.of(cast.ids.values(), keys_with=namespace.tag)
    return _judged(lab, scenario, setting, cast, ends, state, entries, time.time() - began)


async def _interleave(
    lab: LabRuntime, scenario: sc.Scenario, setting: sc.Setting, cast: Cast, timeout_s: float
) -> dict[str, SagaEnd]:
    """Start every saga (in letter order), cancel and reprice as the scenario says, and wait
    for every saga to settle; a step held to commit late is released as its saga settles."""
    runs: list[asyncio.Task[SagaEnd]] = []
    extras = [
        asyncio.ensure_future(_cancel(lab, cast, cancel, timeout_s)) for cancel in scenario.cancels
    ]
    try:
        for saga in scenario.sagas:
            started = asyncio.Event()
            title = f"anomaly {scenario.anomaly.value}: {setting.name}"
            run = _saga(lab, title, cast, saga, started, scenario.late, timeout_s)
            runs.append(asyncio.ensure_future(run))
            await _first(started, runs[-1])
        for reprice in scenario.reprices:
            await _reprice(lab, cast, reprice)
        ends = await asyncio.gather(*runs)
        await asyncio.gather(*extras)
    finally:
        for task in (*runs, *extras):
            task.cancel()
    return {end.letter: end for end in ends}


async def _first(started: asyncio.Event, run: asyncio.Task[SagaEnd]) -> None:
    """Until the saga started (or its task ended: its error surfaces at the gather)."""
    waiting = asyncio.ensure_future(started.wait())
    await asyncio.wait([waiting, run], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()


async def _saga(
    lab: LabRuntime,
    title: str,
    cast: Cast,
    saga: sc.Saga,
    started: asyncio.Event,
    late_steps: tuple[tuple[str, str], ...],
    timeout_s: float,
) -> SagaEnd:
    saga_id = cast.ids[saga.letter]
    placed = cast.namespace.order(saga.order)
    attributes: dict[str, str | int] = {
        SAGA_ID: saga_id,
        SAGA_VARIANT: lab.variant,
        SAGA_ORDER_ID: placed.order_id,
        SAGA_SCENARIO: title,
        SAGA_REPEAT: 1,
    }
    with _tracer.start_as_current_span(
        root_span_name(lab.variant, placed.order_id), attributes=attributes
    ) as root:
        plan = faults.FaultPlan(
            holds=[h.model_copy(update={"until": cast.signal(h.until)}) for h in saga.holds]
        )
        asked = time.time()
        await lab.driven.start_saga(saga_id, placed, plan, sc.POLICY)
        lab.history.started(saga_id, placed, asked)
        started.set()
        outcome = await lab.runtime.wait(saga_id, timeout_s)
        lab.history.ended(outcome)
        for letter, step in late_steps:
            if letter == saga.letter:
                lab.signals.give(late(saga_id, step))
        root.set_attributes(_attributes(outcome))
        trace_id = f"{root.get_span_context().trace_id:032x}"
    return SagaEnd.of(saga.letter, saga_id, cast.namespace.outcome(outcome), trace_id)


def _attributes(outcome: SagaOutcome) -> dict[str, str]:
    found = {SAGA_OUTCOME: outcome.status.value}
    if outcome.reason is not None:
        found[SAGA_REASON] = str(outcome.reason)
    return found


async def _cancel(lab: LabRuntime, cast: Cast, cancel: sc.Cancel, timeout_s: float) -> None:
    saga_id = cast.ids[cancel.saga]
    if await lab.signals.wait(entered(saga_id, cancel.step), timeout_s):
        await lab.runtime.cancel_saga(saga_id)


async def _reprice(lab: LabRuntime, cast: Cast, reprice: sc.Reprice) -> None:
    product = cast.namespace.id(reprice.product)
    await lab.runtime.domain.inventory.reprice(product, reprice.price_cents)
    lab.history.repriced(product, reprice.price_cents)
    lab.signals.give(released(cast.signal(reprice.then)))


async def _views_settled(lab: LabRuntime, cast: Cast, timeout_s: float) -> None:
    """Until each saga's own view has caught up: no step running, and every step its service
    committed shown done (a late commit's consequences, in the choreography, run on behind the
    saga's end until its chain stops)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        views = [await lab.runtime.describe(saga_id) for saga_id in cast.ids.values()]
        if all(caught_up(view, lab.recorder.committed) for view in views):
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the sagas' views did not settle in {timeout_s:.0f}s")


def caught_up(view: SagaOutcome, committed: set[tuple[str, str]]) -> bool:
    states = {s.step: s.status for s in view.steps}
    running = any(status is StepStatus.RUNNING for status in states.values())
    shown = all(
        states.get(step) is StepStatus.DONE for saga, step in committed if saga == view.saga_id
    )
    return view.status.terminal and not running and shown


def _judged(
    lab: LabRuntime,
    scenario: sc.Scenario,
    setting: sc.Setting,
    cast: Cast,
    ends: dict[str, SagaEnd],
    state: BusinessState,
    entries: Sequence[Entry],
    seconds: float,
) -> CellRun:
    spec = lab.runtime.domain.saga
    settled = [Settled(cast.ids[s.letter], s.order, ends[s.letter].outcome) for s in scenario.sagas]
    by_history: list[Finding] = check(entries, spec)
    by_state: list[Finding] = violations(sc.SEED, state, settled, spec)
    return CellRun(
        anomaly=scenario.anomaly,
        variant=lab.variant,
        setting=setting.name,
        countermeasures=setting.countermeasures.text,
        definition=setting.definition,
        off=setting is scenario.off,
        expected=setting is scenario.off and lab.variant in scenario.occurs_in,
        sagas=[ends[s.letter] for s in scenario.sagas],
        by_history=by_history,
        by_invariants=by_state,
        seconds=round(seconds, 3),
        history=list(entries),
    )
