"""The whole comparison: every style, its floors, its sagas, ``repeat`` times over.

Each repeat opens a fresh session per style (servers started anew), so the repeats are
independent samples; within a repeat the styles run one after the other, and their order
alternates between repeats, so a slow spell of a shared machine does not land on one style
alone. Every measured run is preceded by a short warm-up that is not measured.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.bench import resources
from harness.bench.analysis import Spread, aggregate, holds, knees, verdict
from harness.bench.calibration import Calibration, calibrate
from harness.bench.cold import cold_start
from harness.bench.endurance import endurance
from harness.bench.measure import CLOSED, OPEN, Load, Measurement, measure
from harness.bench.resources import Outside
from harness.bench.spans import SpanTail
from harness.bench.workload import SagaDriver, floor_kinds, open_floor
from harness.compare.conditions import gather
from harness.compare.runner import new_run_tag
from harness.deploy.attach import Deployed
from harness.session import Session, open_session
from shared.runtime import SagaRuntime
from shared.settings import Settings

SCHEMA = 3
WARMUP = 10
"""Sagas run (unmeasured) before each measured run: caches, connections, the sandbox."""
CLOSED_TIMEOUT_S = 600.0
QUIET_LOAD = 0.5
"""Runs are publishable only when the 1-minute load average was below this at the start."""


class BenchFailed(Exception):
    """A closed run's saga did not complete: the benchmark measured something broken."""


@dataclass(frozen=True)
class Style:
    """A variant in one configuration: choreography, or orchestration with remote or local
    activities."""

    variant: str
    activities: str | None = None

    @property
    def name(self) -> str:
        return self.variant if self.activities is None else f"{self.variant}/{self.activities}"


@dataclass(frozen=True)
class BenchPlan:
    """What to run: the styles, the load (closed, or an open sweep), repeats, cold starts."""

    styles: tuple[Style, ...]
    orders: int = 300
    concurrency: int = 50
    rates: tuple[float, ...] = ()
    duration_s: float = 20.0
    deadline_s: float = 30.0
    p95_bound_ms: float = 2000.0
    repeat: int = 1
    cold_start: bool = True
    warmup: int = WARMUP
    store: str = "sqlite"
    temporal_db: str = "file"
    """The embedded Temporal server keeps its state in a SQLite file (WAL) or in memory."""
    calibrate: bool = True
    """Measure the engines' single operations first (harness/bench/calibration.py)."""
    keep_traces: str | None = None
    """Copy each session's trace file here (``traces-run1-choreography.jsonl``) before its
    scratch folder goes: a run's spans, for scripts/hop_anatomy.py and the like."""

    @property
    def model(self) -> str:
        return OPEN if self.rates else CLOSED


Progress = Callable[[str], None]


@dataclass
class Bench:
    """Runs a plan in a scratch folder and collects every measurement and cold start."""

    plan: BenchPlan
    settings: Settings
    scratch: Path
    progress: Progress = lambda line: None
    deployed: Deployed | None = None
    """A deployment whose variants are measured from the front door (nothing of theirs is
    started; the floors still run, on its servers)."""
    measurements: list[Measurement] = field(default_factory=list)
    cold: list[dict[str, Any]] = field(default_factory=list)
    calibration: Calibration | None = None

    async def run(self) -> dict[str, Any]:
        conditions = gather(
            store=self.plan.store,
            definition=(
                self.deployed.definition if self.deployed is not None else self.settings.definition
            ),
            activities=",".join(s.activities for s in self.plan.styles if s.activities) or "-",
            attached=self.deployed.source if self.deployed is not None else None,
        )
        load_before = conditions.load_at_start
        if self.plan.calibrate:
            self.progress("calibration: one engine operation at a time")
            self.calibration = await calibrate(
                self.settings, temporal_db=self.plan.temporal_db, scratch=self.scratch
            )
        for repeat in range(1, self.plan.repeat + 1):
            styles = self.plan.styles if repeat % 2 else tuple(reversed(self.plan.styles))
            for style in styles:
                await self._style(style, repeat)
        doc = document(self.plan, self.measurements, self.cold, load_before, os.getloadavg())
        calibration = self.calibration.as_dict() if self.calibration is not None else None
        return {**doc, "calibration": calibration, "conditions": conditions.model_dump(mode="json")}

    async def _style(self, style: Style, repeat: int) -> None:
        if self.plan.cold_start:
            self.progress(f"{style.name}: cold start (run {repeat})")
            seconds = await cold_start(
                style.variant, style.activities, self.plan.store, self.plan.temporal_db
            )
            self.cold.append({"style": style.name, "repeat": repeat, **seconds})
        async with self._session(style, repeat) as session:
            runtime = session.runtimes[style.variant]
            tail = SpanTail(session.traces_path)
            if self.plan.model == CLOSED:
                await self._closed(style, repeat, session, runtime, tail)
            else:
                await self._sweep(style, repeat, session, runtime, tail)

    @asynccontextmanager
    async def _session(self, style: Style, repeat: int) -> AsyncIterator[Session]:
        folder = self.scratch / f"run{repeat}-{style.name.replace('/', '-')}"
        options: dict[str, dict[str, Any]] = {
            "choreography": {"broker_state_dir": folder / "nats"},
        }
        options["orchestration"] = server_options(folder, self.plan.temporal_db)
        if style.activities is not None:
            options["orchestration"]["activities"] = style.activities
        try:
            async with open_session(
                [style.variant],
                folder / "state",
                folder / "traces.jsonl",
                settings=self.settings,
                deployed=self.deployed,
                inject=False,
                options=options,
            ) as session:
                yield session
        finally:
            self._keep_traces(folder / "traces.jsonl", folder.name)
            shutil.rmtree(folder, ignore_errors=True)

    def _keep_traces(self, traces: Path, name: str) -> None:
        if self.plan.keep_traces is not None and traces.exists():
            kept = Path(self.plan.keep_traces)
            kept.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(traces, kept / f"traces-{name}.jsonl")

    async def _closed(
        self, style: Style, repeat: int, session: Session, runtime: SagaRuntime, tail: SpanTail
    ) -> None:
        plan = self.plan
        load = Load(CLOSED, orders=plan.orders, concurrency=plan.concurrency, deadline_s=1e9)
        warm = Load(CLOSED, orders=plan.warmup, concurrency=min(plan.concurrency, 5))
        for kind in floor_kinds(style.variant, durable=session.stores is not None):
            self.progress(f"{style.name}: {kind}, {plan.orders} at concurrency {plan.concurrency}")
            session.tracing.set_enabled(False)
            async with open_floor(runtime, kind, session.stores) as driver:
                if plan.warmup:
                    await warm.drive(driver)
                m = await measure(
                    style.name,
                    style.variant,
                    driver,
                    load,
                    session.tracing,
                    tail,
                    outside=self._outside(style),
                )
            self._keep_closed(m, repeat)
        for traced in (True, False):
            label = "traced" if traced else "untraced"
            self.progress(f"{style.name}: {plan.orders} sagas {label}")
            session.tracing.set_enabled(traced)
            try:
                await self._warm(runtime, warm)
                sagas = SagaDriver(runtime, new_run_tag(), CLOSED_TIMEOUT_S)
                await sagas.prepare(plan.orders)
                m = await measure(
                    style.name,
                    style.variant,
                    sagas,
                    load,
                    session.tracing,
                    tail,
                    outside=self._outside(style),
                )
            finally:
                session.tracing.set_enabled(True)
            self._keep_closed(m, repeat)

    async def _sweep(
        self, style: Style, repeat: int, session: Session, runtime: SagaRuntime, tail: SpanTail
    ) -> None:
        """The open model at each rate, lowest first; stops after two rates that do not hold
        or once sagas are left unfinished (what follows would only queue behind them)."""
        plan = self.plan
        failing = 0
        session.tracing.set_enabled(True)
        await self._warm(runtime, Load(CLOSED, orders=plan.warmup, concurrency=5))
        for rate in sorted(plan.rates):
            load = Load(OPEN, rate=rate, duration_s=plan.duration_s, deadline_s=plan.deadline_s)
            self.progress(f"{style.name}: {rate:g} sagas/s for {plan.duration_s:g} s")
            timeout = plan.deadline_s * 2 + plan.duration_s + 30
            driver = SagaDriver(runtime, new_run_tag(), timeout)
            await driver.prepare(load.sagas)
            m = await measure(
                style.name,
                style.variant,
                driver,
                load,
                session.tracing,
                tail,
                outside=self._outside(style),
            )
            self._keep(m, repeat)
            failing = 0 if holds(m, plan.p95_bound_ms) else failing + 1
            if failing >= 2 or any("SagaStuck" in e for e in m.errors):
                break

    async def _warm(self, runtime: SagaRuntime, warm: Load) -> None:
        if warm.orders:
            driver = SagaDriver(runtime, new_run_tag(), CLOSED_TIMEOUT_S)
            await driver.prepare(warm.orders)
            await warm.drive(driver)

    def _outside(self, style: Style) -> Callable[[], Outside]:
        """The deployment's processes serving the style, when the bench drives one from
        `up` (a compose deployment's run in containers: not measured)."""
        deployed = self.deployed
        if deployed is None or not deployed.supervised or style.variant not in deployed.variants:
            return lambda: ()
        return lambda: resources.deployed(deployed.state_dir, style.variant)

    def _keep_closed(self, m: Measurement, repeat: int) -> None:
        """A closed run counts only if every saga completed: else it measured a failure."""
        if m.completed < m.sagas:
            reason = "; ".join(m.errors) or "a saga ended other than COMPLETED"
            failed = m.sagas - m.completed
            raise BenchFailed(f"{m.style} {m.kind}: {failed} of {m.sagas} failed: {reason}")
        self._keep(m, repeat)

    def _keep(self, m: Measurement, repeat: int) -> None:
        m.repeat = repeat
        self.measurements.append(m)


def server_options(folder: Path, temporal_db: str) -> dict[str, Any]:
    """The orchestration runtime's options for its embedded server: on a file in ``folder``
    (with the WAL pragmas of orchestration/server.py) unless asked to keep it in memory, whose
    resident size grows with every workflow (137 -> 343 MB over a 5 sagas/s run)."""
    return {"server_state_dir": folder / "temporal"} if temporal_db == "file" else {}


def document(
    plan: BenchPlan,
    measurements: list[Measurement],
    cold: list[dict[str, Any]],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    """Everything a bench run found, as one JSON-ready document."""
    return {
        "schema": SCHEMA,
        "plan": {**asdict(plan), "styles": [s.name for s in plan.styles], "model": plan.model},
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": list(load_before),
            "load_after": list(load_after),
            "quiet": load_before[0] < QUIET_LOAD,
        },
        "measurements": aggregate(measurements),
        "verdict": verdict(measurements),
        "knees": knees(measurements, plan.p95_bound_ms),
        "endurance": endurance([m.as_dict() for m in measurements], plan.duration_s)
        if plan.model == OPEN
        else {},
        "cold_start": cold_summary(cold),
        "runs": [m.as_dict() for m in measurements],
    }


def cold_summary(cold: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per style: the median cold start over the repeats, its range, and each run."""
    out: dict[str, dict[str, Any]] = {}
    for style in dict.fromkeys(c["style"] for c in cold):
        runs = [c for c in cold if c["style"] == style]
        out[style] = {
            **Spread.of(c["first_saga_s"] for c in runs).as_dict(),
            "runs": runs,
        }
    return out
