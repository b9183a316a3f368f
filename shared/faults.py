"""FaultPlan: what fails where, how often and how long, identical for both variants.

A plan is data carried with the order. Whether a rule fires for a saga is drawn from a
generator seeded by (plan seed, saga id, step, rule), so a random mix replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import Phase, StepId
from shared.errors import CrashPoint
from shared.saga import COMPENSATIONS, FORWARD_STEPS, SAGA


class FaultRule(BaseModel):
    """Faults for one step; ``phase=compensate`` on a forward name targets its compensation.

    Any step name may be faulted (a spec may add steps); the phase is resolved for the order
    saga's own names, and a rule for another spec's compensation names it directly.
    """

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
    long — until the cancel has fenced what it must before the step reports (the step itself
    in the orchestration, whose workflow fences the step in flight; the pivot in the
    choreography, whose services each fence their own step). Makes "a cancel lands between
    a step's commit and its report" an ordering, not a race against a timer."""
    hang: bool = False
    duplicate: bool = False
    crash: CrashPoint | None = None
    probability: float = Field(default=1.0, ge=0.0, le=1.0)
    rounds: int = Field(default=1, ge=1, le=1_000)
    """In how many rounds the rule fires: round 0 is the saga's own run, round n an operator's
    n-th retry of a failed compensation (by default a retry meets a repaired service)."""

    @model_validator(mode="after")
    def _resolve_phase(self) -> Self:
        if not SAGA.knows(self.step):
            return self
        if self.phase is Phase.COMPENSATE and SAGA.phase_of(self.step) is Phase.FORWARD:
            compensation = SAGA.compensation_of(self.step)
            if compensation is None:
                raise ValueError(f"step {self.step} has no compensation to fault")
            object.__setattr__(self, "step", compensation)
        object.__setattr__(self, "phase", SAGA.phase_of(self.step))
        return self


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

    def decide(self, saga_id: str, step: str, attempt: int, round: int = 0) -> FaultAction:
        """The faults for this attempt; attempts count from 1 as both engines do."""
        action = FaultAction()
        for index, rule in enumerate(self.rules):
            if rule.step == step and round < rule.rounds and self._fires(rule, index, saga_id):
                action = _merge(action, rule, attempt)
        return action

    def _fires(self, rule: FaultRule, index: int, saga_id: str) -> bool:
        if rule.probability >= 1.0:
            return True
        draw = random.Random(f"{self.seed}:{saga_id}:{rule.step}:{index}").random()
        return draw < rule.probability

    @classmethod
    def random(cls, seed: int, rate: float = 0.3) -> FaultPlan:
        """A seeded mix of recoverable faults (delays, transient errors, duplicates)."""
        rng = random.Random(seed)
        rules: list[FaultRule] = []
        for step in (*FORWARD_STEPS, *COMPENSATIONS):
            if rng.random() >= rate:
                continue
            kind = rng.choice(("transient", "delay", "duplicate"))
            if kind == "transient":
                rules.append(FaultRule(step=step, transient=rng.randint(1, 3)))
            elif kind == "delay":
                rules.append(FaultRule(step=step, delay_ms=rng.randint(5, 200)))
            else:
                rules.append(FaultRule(step=step, duplicate=True))
        return cls(seed=seed, rules=rules)


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
