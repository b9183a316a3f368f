"""Fault injection in a deployment started for chaos (``saga-compare up --chaos``).

``up --chaos`` sets ``SAGA_HOOKS=shared.faults.deployment:chaos_hooks`` and
``SAGA_FAULTS_DIR`` (a folder of its state dir, owner-only) for every process of the
deployment. Each process then reads a saga's plan from that folder on the saga's first step,
shares fences and releases with the others through it, and dies for real at a crash point
(SIGKILL of itself, for its supervisor to restart). A deployment started without ``--chaos``
has no hooks: none of this is imported there.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from shared.faults import hooks
from shared.faults.injector import FaultInjector
from shared.faults.sources import DirectoryPlans, DirectorySignals
from shared.hooks import Hooks

FAULTS_DIR_ENV = "SAGA_FAULTS_DIR"
PLANS = "plans"
SIGNALS = "signals"


async def die_for_real() -> None:
    """A crash point in a deployment: the process ends here, for its supervisor to restart."""
    os.kill(os.getpid(), signal.SIGKILL)


def folder() -> Path:
    value = os.environ.get(FAULTS_DIR_ENV)
    if not value:
        raise RuntimeError(f"{FAULTS_DIR_ENV} is not set: start the deployment with up --chaos")
    return Path(value)


def chaos_hooks(variant: str) -> Hooks:
    """The hooks of one process of a chaos deployment (see the module docstring)."""
    base = folder()
    injector = FaultInjector.for_variant(
        variant,
        DirectoryPlans(base / PLANS),
        DirectorySignals(base / SIGNALS),
        die=die_for_real,
    )
    return hooks(injector)
