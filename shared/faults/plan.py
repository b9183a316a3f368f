"""FaultPlan: what fails where, how often and how long, and where a saga is held.

A plan belongs to one saga and reaches the processes out of band (`shared/faults/sources.py`),
never in a message. Whether a rule fires for a saga is drawn from a generator seeded by (plan
seed, saga id, step, rule), so a random mix replays exactly. A rule names a step or a
compensation of the saga's spec; `resolve` turns ``phase=compensate`` on a forward name into
that step's compensation, against the spec the run uses.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.contracts import Phase, StepId
from shared.saga import SagaSpec

FAULT_EVENT = "saga.fault_injected"
"""The span event every injected fault is recorded as (the report marks it on the charts)."""
HOLD_EVENT = "saga.held"
"""The span event of a hold (a barrier) that made a step wait."""


class CrashPoint(StrEnum):
    BEFORE_COMMIT = "before_commit"
    AFTER_COMMIT = "after_commit"


class FaultRule(BaseModel):
    """Faults for one step; ``phase=compensate`` on a forward name targets its compensation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: StepId
    phase: Phase | None = None
    permanent: bool = False
    transient: int = Field(default=0, ge=0, le=1_000_000)
    delay_ms: int = Field(default=0, ge=0, le=3_600_000)
    """Delay before the service is called (the step has not committed meanwhile)."""
    delay_after_ms: int = Field(default=0, ge=0, le=3_600_000)
    """Delay after the service committed, before the step reports (a result in transit)."""
    until_cancelled: bool = False
    """With ``delay_after_ms``: the report waits for the saga's cancel instead, at most that
    long — until the cancel has fenced what it must before the step reports (the injector
    knows which fence that is in each style). Makes "a cancel lands between a step's commit
    and its report" an ordering, not a race against a timer."""
    hang: bool = False
    duplicate: bool = False
    crash: CrashPoint | None = None
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    rounds: int = Field(default=1, ge=1, le=1_000)
    """In how many rounds the rule fires: round 0 is the saga's own run, round n an operator's
    n-th retry of a failed compensation (by default a retry meets a repaired service)."""

    def resolve(self, spec: SagaSpec) -> FaultRule:
        """The rule with its step named as the spec names it (a compensation, for
        ``phase=compensate`` on a forward step); raises ValueError for a step it lacks."""
        if not spec.knows(self.step):
            names = ", ".join((*spec.forward_steps, *spec.compensations))
            raise ValueError(f"unknown step {self.step!r}; use one of: {names}")
        step = self.step
        if self.phase is Phase.COMPENSATE and spec.phase_of(step) is Phase.FORWARD:
            compensation = spec.compensation_of(step)
            if compensation is None:
                raise ValueError(f"step {step} has no compensation to fault")
            step = compensation
        return self.model_copy(update={"step": step, "phase": spec.phase_of(step)})


Signal = str
"""A name a hold waits for: `reached` (another saga got to a step) or `released` (by hand)."""


def reached(saga_id: str, step: str, at: Literal["before", "after", "fenced"]) -> Signal:
    """The signal a saga gives when it reaches a step: before its service runs, after the
    service committed, or when a cancel fenced it."""
    return f"{saga_id}/{step}/{at}"


def released(name: str) -> Signal:
    """A signal nobody gives but the harness (or an operator): ``release(name)``."""
    return f"release/{name}"


class Hold(BaseModel):
    """A barrier: hold this saga at a step until a signal (another saga's progress, a release).

    ``before``: the step waits before its service runs; ``after``: the service committed and
    the step's report waits (in the choreography its events stay unpublished meanwhile). A
    hold that waited ``timeout_s`` fails the attempt as a technical failure, so the engine
    retries it and the next attempt waits again: a saga can be parked for as long as needed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    step: StepId
    at: Literal["before", "after"] = "before"
    until: Signal
    timeout_s: float = Field(default=30.0, gt=0, le=86_400)
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    """Once released, wait this long more (the anomaly lab's seeded jitter)."""


@dataclass(frozen=True)
class FaultAction:
    """What to do to one attempt of one step of one saga."""

    delay_s: float = 0.0
    delay_after_s: float = 0.0
    until_cancelled: bool = False
    hang: bool = False
    permanent: bool = False
    transient: bool = False
    lose_ack: bool = False
    crash: CrashPoint | None = None

    @property
    def kinds(self) -> list[str]:
        names = ("delay_s", "delay_after_s", "hang", "permanent", "transient", "lose_ack", "crash")
        return [name for name in names if getattr(self, name)]


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    rules: list[FaultRule] = Field(default_factory=list)
    holds: list[Hold] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rules and not self.holds

    def resolve(self, spec: SagaSpec) -> FaultPlan:
        """The plan with every rule's step named as ``spec`` names it (see `FaultRule.resolve`);
        raises ValueError naming the first rule or hold the spec cannot run."""
        rules = []
        for index, rule in enumerate(self.rules):
            try:
                rules.append(rule.resolve(spec))
            except ValueError as error:
                raise ValueError(f"faults.rules[{index}].step: {error}") from None
        for index, hold in enumerate(self.holds):
            if not spec.knows(hold.step):
                raise ValueError(f"faults.holds[{index}].step: unknown step {hold.step!r}")
        return self.model_copy(update={"rules": rules})

    def decide(self, saga_id: str, step: str, attempt: int, round: int = 0) -> FaultAction:
        """The faults for this attempt; attempts count from 1 as both engines do."""
        action = FaultAction()
        for index, rule in enumerate(self.rules):
            if rule.step == step and round < rule.rounds and self._fires(rule, index, saga_id):
                action = _merge(action, rule, attempt)
        return action

    def holds_at(self, step: str, at: Literal["before", "after"]) -> list[Hold]:
        return [hold for hold in self.holds if hold.step == step and hold.at == at]

    def _fires(self, rule: FaultRule, index: int, saga_id: str) -> bool:
        if rule.probability >= 1.0:
            return True
        draw = random.Random(f"{self.seed}:{saga_id}:{rule.step}:{index}").random()
        return draw < rule.probability

    @classmethod
    def random(cls, seed: int, spec: SagaSpec, rate: float = 0.3) -> FaultPlan:
        """A seeded mix of recoverable faults (delays, transient errors, duplicates)."""
        rng = random.Random(seed)
        rules: list[FaultRule] = []
        for step in (*spec.forward_steps, *spec.compensations):
            if rng.random() >= rate:
                continue
            kind = rng.choice(("transient", "delay", "duplicate"))
            if kind == "transient":
                rules.append(FaultRule(step=step, transient=rng.randint(1, 3)))
            elif kind == "delay":
                rules.append(FaultRule(step=step, delay_ms=rng.randint(5, 200)))
            else:
                rules.append(FaultRule(step=step, duplicate=True))
        return cls(seed=seed, rules=rules).resolve(spec)


def _merge(action: FaultAction, rule: FaultRule, attempt: int) -> FaultAction:
    first = attempt == 1
    return FaultAction(
        delay_s=action.delay_s + rule.delay_ms / 1000,
        delay_after_s=action.delay_after_s + rule.delay_after_ms / 1000,
        until_cancelled=action.until_cancelled or rule.until_cancelled,
        hang=action.hang or rule.hang,
        permanent=action.permanent or rule.permanent,
        transient=action.transient or attempt <= rule.transient,
        lose_ack=action.lose_ack or (rule.duplicate and first),
        crash=action.crash or (rule.crash if first else None),
    )
