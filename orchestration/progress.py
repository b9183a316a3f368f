"""The workflow's live view of its saga: each step's status and attempts, as a SagaOutcome.

Plain deterministic bookkeeping, kept out of the workflow so the workflow only sequences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.contracts import (
    ActionResult,
    OperatorAction,
    OrderRequest,
    Phase,
    ReasonId,
    SagaOutcome,
    SagaStatus,
    StepId,
    StepState,
    StepStatus,
)
from shared.saga import SagaSpec

_SETTLED_BY = {StepStatus.DONE: StepStatus.DONE, StepStatus.NOOP: StepStatus.REJECTED}
"""An interrupted step's status, by its compensation's: undone, or refused by the tombstone."""


@dataclass
class _Entry:
    step: StepId
    phase: Phase
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0

    def state(self) -> StepState:
        return StepState(
            step=self.step, phase=self.phase, status=self.status, attempts=self.attempts
        )


@dataclass
class SagaProgress:
    """Forward steps in order (pending until run), then compensations in the order they ran."""

    saga_id: str
    order: OrderRequest
    saga: SagaSpec
    status: SagaStatus = SagaStatus.RUNNING
    reason: ReasonId | None = None
    failed_step: StepId | None = None
    forward: dict[str, _Entry] = field(default_factory=dict)
    compensations: dict[str, _Entry] = field(default_factory=dict)
    """By compensation, in the order they first ran (a retry updates its entry)."""
    actions: list[OperatorAction] = field(default_factory=list)

    def __post_init__(self) -> None:
        for step in self.saga.forward_steps:
            applies = self.saga.applies(step, self.order)
            status = StepStatus.PENDING if applies else StepStatus.SKIPPED
            self.forward[step] = _Entry(step, Phase.FORWARD, status)

    @property
    def resolved(self) -> bool:
        return any(a.result is ActionResult.RESOLVED for a in self.actions)

    @property
    def failed_compensations(self) -> list[StepId]:
        return [e.step for e in self.compensations.values() if e.status is StepStatus.FAILED]

    def running(self) -> StepId | None:
        """The step or compensation in flight, if any (what a stuck saga is stuck in)."""
        for entry in (*self.compensations.values(), *self.forward.values()):
            if entry.status is StepStatus.RUNNING:
                return entry.step
        return None

    def start(self, step: str) -> None:
        self.forward[step].status = StepStatus.RUNNING

    def finish(self, step: str, status: StepStatus, attempts: int) -> None:
        entry = self.forward[step]
        entry.status, entry.attempts = status, attempts

    def blame(self, step: str | None, reason: ReasonId | None) -> None:
        """A forward step's failure ended the forward phase: the saga names it and its reason
        (None: an operator's retry of the step past the pivot completed the saga)."""
        self.failed_step, self.reason = step, reason

    def reject(self, reason: ReasonId) -> None:
        """The first activity refused the order: no step runs, the saga ends REJECTED."""
        self.reason = reason

    def interrupt(self, reason: ReasonId) -> None:
        """Cancel or deadline before the pivot: the saga compensates for this reason."""
        self.reason = reason

    def start_compensation(self, compensation: str) -> None:
        entry = self.compensations.setdefault(compensation, _Entry(compensation, Phase.COMPENSATE))
        entry.status = StepStatus.RUNNING

    def finish_compensation(self, compensation: str, status: StepStatus, attempts: int) -> None:
        """Record a compensation's end; it also settles a forward step that was still in flight."""
        entry = self.compensations[compensation]
        entry.status, entry.attempts = status, attempts
        forward = self.forward[self.saga.forward_of(compensation)]
        if forward.status is StepStatus.RUNNING:
            # Only the compensation knows whether the interrupted step acted: undone, or refused.
            forward.status = _SETTLED_BY.get(status, StepStatus.FAILED)
            forward.attempts = max(forward.attempts, 1)

    def end(self, status: SagaStatus) -> None:
        self.status = status

    def outcome(self) -> SagaOutcome:
        states = [entry.state() for entry in self.forward.values()]
        states += [entry.state() for entry in self.compensations.values()]
        return SagaOutcome(
            saga_id=self.saga_id,
            order_id=self.order.order_id,
            status=self.status,
            reason=self.reason,
            failed_step=self.failed_step,
            failed_compensations=self.failed_compensations,
            steps=states,
            actions=list(self.actions),
        )
