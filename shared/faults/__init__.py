"""Fault injection and barriers: a plan per saga, applied as middleware at two seams.

The plan (`plan.py`) reaches a process out of band (`sources.py`); the injector
(`injector.py`) applies it around every step and fence (`step_middleware.py`) and around the
choreography's outbox publish (`publish_middleware.py`). `hooks` turns an injector into the
`shared.hooks.Hooks` a variant's composition root accepts; `deployment.py` builds them for a
process of a deployment started for chaos.
"""

from __future__ import annotations

from shared.faults.injector import FaultInjector
from shared.faults.plan import (
    FAULT_EVENT,
    CrashPoint,
    FaultAction,
    FaultPlan,
    FaultRule,
    Hold,
    Signal,
    reached,
    released,
)
from shared.faults.publish_middleware import PublishHolds
from shared.faults.sources import DirectoryPlans, DirectorySignals, MemoryPlans, Signals
from shared.faults.step_middleware import StepFaults
from shared.hooks import Hooks


def hooks(injector: FaultInjector) -> Hooks:
    """The injector as middleware for both seams."""
    return Hooks(step=(StepFaults(injector),), publish=(PublishHolds(injector),))


__all__ = [
    "FAULT_EVENT",
    "CrashPoint",
    "DirectoryPlans",
    "DirectorySignals",
    "FaultAction",
    "FaultInjector",
    "FaultPlan",
    "FaultRule",
    "Hold",
    "MemoryPlans",
    "PublishHolds",
    "Signal",
    "Signals",
    "StepFaults",
    "hooks",
    "reached",
    "released",
]
