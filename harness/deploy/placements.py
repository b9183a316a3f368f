"""Which of a run's sagas were placed on the deployment, as they are placed.

A run writes its ledger entry (harness/deploy/ledger.py) before its first saga starts, naming
every order it means to place; a run stopped half-way (Ctrl-C, a deployment gone) never
places the rest. So each saga is also appended to ``ledger/<tag>.placed`` (one line,
``<variant> <saga id>``) once its start is durable, and `check` counts only those: a saga the
deployment does not know is then lost, never merely not placed yet.
"""

from __future__ import annotations

import os
from pathlib import Path

from shared.contracts import OperatorAction, OrderRequest, SagaOutcome, SagaPolicy
from shared.runtime import SagaRuntime
from shared.services import Domain

SUFFIX = ".placed"


def path_of(folder: Path, tag: str) -> Path:
    return folder / f"{tag}{SUFFIX}"


def mark(folder: Path, tag: str, variant: str, saga_id: str) -> None:
    """Append one placed saga (an append of one short line is atomic: no torn lines)."""
    folder.mkdir(parents=True, exist_ok=True)
    line = f"{variant} {saga_id}\n".encode()
    fd = os.open(path_of(folder, tag), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def placed(folder: Path, tag: str) -> set[tuple[str, str]]:
    """Every (variant, saga id) the run with ``tag`` placed."""
    try:
        text = path_of(folder, tag).read_text(encoding="utf-8")
    except FileNotFoundError:
        return set()
    pairs = (line.split(" ", 1) for line in text.splitlines() if " " in line)
    return {(variant, saga_id) for variant, saga_id in pairs}


class PlacingRuntime:
    """A variant's runtime that records each saga once its start returned (durable)."""

    def __init__(self, runtime: SagaRuntime, folder: Path, tag: str) -> None:
        self.runtime = runtime
        self.folder = folder
        self.tag = tag
        self.variant = runtime.variant
        self.domain: Domain = runtime.domain

    async def start_saga(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        await self.runtime.start_saga(saga_id, order, policy)
        mark(self.folder, self.tag, self.variant, saga_id)

    async def cancel_saga(self, saga_id: str) -> None:
        await self.runtime.cancel_saga(saga_id)

    async def describe(self, saga_id: str) -> SagaOutcome:
        return await self.runtime.describe(saga_id)

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        return await self.runtime.wait(saga_id, timeout_s)

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        return await self.runtime.retry_compensation(saga_id, who)

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        return await self.runtime.retry_step(saga_id, who)

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        return await self.runtime.resolve(saga_id, who, note)
