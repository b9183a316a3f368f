"""Where a process finds a saga's plan and the signals holds wait for: never in a message.

In one process (the harness running both styles, the tests) plans and signals live in memory:
the harness installs a saga's plan before it starts the saga. A deployment started for chaos
(``saga-compare up --chaos``) keeps them in a folder of its state dir instead, which only its
owner can write: the harness writes ``plans/<saga_id>.json`` before it starts the saga, and
every process of the deployment reads it on the saga's first step. Signals that must cross
processes (a fence, a release by hand) are files there too; the others stay in the process.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from shared.faults.plan import FaultPlan, Signal

POLL_S = 0.05
"""How often a hold in a deployment looks for a signal given by another process."""


class PlanSource(Protocol):
    def plan(self, saga_id: str) -> FaultPlan | None:
        """The saga's plan, or None when it has none."""
        ...


class PlanBoard(PlanSource, Protocol):
    def install(self, saga_id: str, plan: FaultPlan) -> None:
        """Make the plan known before the saga starts (a saga without one runs clean)."""
        ...


class MemoryPlans:
    """Plans held by the process that runs the sagas (the harness, a test)."""

    def __init__(self) -> None:
        self._plans: dict[str, FaultPlan] = {}

    def install(self, saga_id: str, plan: FaultPlan) -> None:
        if not plan.empty:
            self._plans[saga_id] = plan

    def plan(self, saga_id: str) -> FaultPlan | None:
        return self._plans.get(saga_id)


def _safe(name: str) -> str:
    """A file name for a saga id or a signal (ids are subject-safe; signals hold slashes)."""
    return name.replace("/", "~")


class DirectoryPlans:
    """Plans as files in a deployment's state dir: the harness writes, every process reads."""

    KEEP = 10_000
    """Plans remembered per process (a saga's steps come close together)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._cache: OrderedDict[str, FaultPlan | None] = OrderedDict()

    def install(self, saga_id: str, plan: FaultPlan) -> None:
        if plan.empty:
            return
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.folder / f"{_safe(saga_id)}.json"
        partial = target.with_suffix(f".{os.getpid()}.part")
        partial.write_text(plan.model_dump_json(), encoding="utf-8")
        partial.replace(target)  # a reader sees the whole plan or none

    def plan(self, saga_id: str) -> FaultPlan | None:
        # Written before the saga started, so a miss is final for this saga.
        if saga_id not in self._cache:
            path = self.folder / f"{_safe(saga_id)}.json"
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                self._cache[saga_id] = None
            else:
                self._cache[saga_id] = FaultPlan.model_validate_json(text)
            if len(self._cache) > self.KEEP:
                self._cache.popitem(last=False)
        return self._cache[saga_id]


class Signals:
    """Signals given and awaited in this process (the most recent `KEEP` are remembered)."""

    KEEP = 100_000

    def __init__(self) -> None:
        self._given: OrderedDict[Signal, None] = OrderedDict()
        self._waiting: dict[Signal, asyncio.Event] = {}

    def _event(self, signal: Signal) -> asyncio.Event:
        event = self._waiting.setdefault(signal, asyncio.Event())
        if signal in self._given:
            event.set()
        return event

    def give(self, signal: Signal) -> None:
        self._given[signal] = None
        if len(self._given) > self.KEEP:
            self._given.popitem(last=False)
        waiting = self._waiting.pop(signal, None)
        if waiting is not None:
            waiting.set()

    def given(self, signal: Signal) -> bool:
        return signal in self._given

    async def wait(self, signal: Signal, timeout_s: float) -> bool:
        """True once the signal is given; False after ``timeout_s``."""
        if self.given(signal):
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._event(signal).wait()
        except TimeoutError:
            return False
        return True


class DirectorySignals(Signals):
    """Signals that cross a deployment's processes as files (fences and releases only)."""

    SHARED = ("/fenced", "release/")

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def _path(self, signal: Signal) -> Path:
        return self.folder / _safe(signal)

    def _shared(self, signal: Signal) -> bool:
        return signal.endswith(self.SHARED[0]) or signal.startswith(self.SHARED[1])

    def give(self, signal: Signal) -> None:
        super().give(signal)
        if self._shared(signal):
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._path(signal).touch()

    def given(self, signal: Signal) -> bool:
        return super().given(signal) or (self._shared(signal) and self._path(signal).exists())

    async def wait(self, signal: Signal, timeout_s: float) -> bool:
        if not self._shared(signal):
            return await super().wait(signal, timeout_s)
        end = time.monotonic() + timeout_s
        while not self.given(signal):
            left = end - time.monotonic()
            if left <= 0:
                return False
            await super().wait(signal, min(POLL_S, left))
        return True
