"""The tracker's projection: a pure fold of a saga's events into what is known about it.

A `SagaView` holds facts, never a sequence: for each forward step whether it was started and
its best-known result (per retry round, for a step past the pivot an operator ran again), for
each compensation its result per retry round, the earliest business failure and the earliest
cancel (each with the time it happened), whether the pivot passed.
Every fact merges by a join (or, max, earliest), so `fold` is commutative, associative and
idempotent: any interleaving of a saga's events — reordered, duplicated, late — folds to the
same view as the in-order sequence. `outcome` and `decide` derive the live state and the end
from the view alone; the tracker stores one view per saga (`tracker/projector.py`).

Whatever happened first decides the reason: a deadline's cancel happened at the deadline, a
failure when its step failed, whenever the tracker gets to fold them (a tracker that was down
past a deadline still reports the business failure that came before it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from choreography.events import Event, Role, Routing
from shared.contracts import (
    Action,
    ActionResult,
    OperatorAction,
    Phase,
    ReasonId,
    SagaOutcome,
    SagaStatus,
    StepId,
    StepState,
    StepStatus,
)
from shared.definition import DefinitionRef
from shared.saga import SagaSpec
from shared.store import Migration, migrations

MIGRATIONS: tuple[Migration, ...] = migrations(
    "tracker",
    """
    CREATE TABLE saga_state (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT,
        failed_step TEXT,
        phase TEXT NOT NULL,
        pivot_passed INTEGER NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION NOT NULL,
        deadline_at DOUBLE PRECISION NOT NULL,
        placed TEXT NOT NULL,
        traceparent TEXT,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE TABLE saga_steps (
        saga_id TEXT NOT NULL,
        step TEXT NOT NULL,
        phase TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        seq INTEGER NOT NULL,
        PRIMARY KEY (saga_id, step)
    );
    CREATE TABLE interventions (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        reason TEXT,
        failed_compensations TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        resolved_at DOUBLE PRECISION,
        note TEXT
    );
    CREATE INDEX saga_state_open ON saga_state (phase, status)
    """,
    """
    DROP TABLE interventions;
    DROP TABLE saga_steps;
    DROP TABLE saga_state;
    CREATE TABLE sagas (
        saga_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        status TEXT NOT NULL,
        phase TEXT NOT NULL,
        reason TEXT,
        failed_step TEXT,
        running_step TEXT,
        failed_compensation TEXT,
        waiting INTEGER NOT NULL DEFAULT 0,
        started_at DOUBLE PRECISION NOT NULL,
        settled_at DOUBLE PRECISION,
        ended_at DOUBLE PRECISION,
        deadline_at DOUBLE PRECISION NOT NULL,
        placed TEXT NOT NULL,
        traceparent TEXT,
        view TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX sagas_status ON sagas (status);
    CREATE INDEX sagas_order ON sagas (order_id)
    """,
)
"""The tracker's tables, in the orders store: one row per saga holding its view, and the
columns read models list and filter by, derived from the view at every write (version 2
replaced the row-per-step projection of version 1)."""

FORWARD, COMPENSATING, CLOSED = "forward", "compensating", "closed"
"""A saga's phase as the list shows it: going forward, compensating, or settled."""

_RESULT_RANK = {None: 0, StepStatus.REJECTED: 1, StepStatus.FAILED: 2, StepStatus.DONE: 3}
"""Which forward result wins a merge (a step has one result; the rank only breaks ties)."""
_COMPENSATION_RANK = {None: 0, StepStatus.NOOP: 1, StepStatus.FAILED: 2, StepStatus.DONE: 3}
_SETTLED_BY = {StepStatus.DONE: StepStatus.DONE, StepStatus.NOOP: StepStatus.REJECTED}
"""A step interrupted in flight takes its status from its compensation: undone, or refused."""


class _Facts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepFacts(_Facts):
    """What is known of one forward step: the latest round's result wins (a later round is an
    operator's retry of a step past the pivot; it is started again, its result unknown yet)."""

    started: bool = False
    result: StepStatus | None = None
    attempts: int = 0
    round: int = Field(default=0, exclude_if=lambda value: value == 0)
    """Left out when 0, so the view of a saga no operator retried is stored as before (a
    tracker or monitor of the previous release still reads it)."""

    def merge(self, other: StepFacts) -> StepFacts:
        started = self.started or other.started
        if self.round != other.round:
            later = self if self.round > other.round else other
            return later.model_copy(update={"started": started})
        best = max(self.result, other.result, key=_RESULT_RANK.__getitem__)
        return StepFacts(
            started=started,
            result=best,
            attempts=max(self.attempts, other.attempts),
            round=self.round,
        )


class CompensationFacts(_Facts):
    """What is known of one compensation: the latest round's result wins."""

    round: int = 0
    result: StepStatus | None = None
    attempts: int = 0

    def merge(self, other: CompensationFacts) -> CompensationFacts:
        def key(facts: CompensationFacts) -> tuple[int, int, int]:
            return (facts.round, _COMPENSATION_RANK[facts.result], facts.attempts)

        return max(self, other, key=key)


class Cause(_Facts):
    """Why the saga turned to compensation, and when that happened."""

    at: float
    reason: ReasonId | None = None
    step: StepId | None = None
    """The forward step that failed (None for a cancel)."""

    def earliest(self, other: Cause | None) -> Cause:
        if other is None:
            return self
        return min(self, other, key=lambda c: (c.at, c.reason or "", c.step or ""))


class Ended(_Facts):
    """The end the tracker recorded (with the order record) for a saga that compensated."""

    status: SagaStatus
    reason: ReasonId | None = None
    at: float = 0.0


class SagaView(_Facts):
    """Everything the tracker knows of one saga, as facts that merge."""

    saga_id: str
    order_id: str
    skipped: tuple[StepId, ...] = ()
    steps: dict[str, StepFacts] = Field(default_factory=dict)
    compensations: dict[str, CompensationFacts] = Field(default_factory=dict)
    failure: Cause | None = None
    """The earliest business failure of a step up to the pivot."""
    cancel: Cause | None = None
    """The earliest cancel (customer or deadline); void once the pivot passed."""
    onward_failure: StepId | None = None
    """A step after the pivot that failed: only a person can finish the saga."""
    pivot_passed: bool = False
    completed: bool = False
    end: Ended | None = None
    actions: tuple[OperatorAction, ...] = ()
    """Operator actions, in the order the tracker recorded them (not folded from events); a
    retry's result is derived from its round's compensation facts (`actions`)."""
    rounds: dict[int, tuple[StepId, ...]] = Field(default_factory=dict)
    """What each operator retry round ran again: failed compensations, or the step past the
    pivot that failed."""
    definition: DefinitionRef | None = None
    """Shape 2: the saga definition the saga runs, so a tracker that understands several
    decides each saga by its own steps (shape 1 had one definition: the tracker's)."""
    reports: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Shape 2: what each forward step reported (the charge's amount as money)."""
    shape: int = Field(default=1, ge=1)
    """The stored shape's version: the release of the code that wrote it (absent: 1)."""

    @model_serializer(mode="wrap")
    def _in_its_shape(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Shape 1 is stored exactly as release 1 stored it (none of shape 2's fields)."""
        data: dict[str, Any] = handler(self)
        if self.shape == 1:
            for name in SHAPE_2_FIELDS:
                data.pop(name, None)
        return data


SHAPE_2_FIELDS = ("definition", "reports", "shape")
"""What release 2 added to a stored view."""


def new_view(placed: Event, saga: SagaSpec, shape: int = 1) -> SagaView:
    """The view of a saga just placed: which of its steps do not apply to its order (and,
    in shape 2, the definition it runs)."""
    skipped = tuple(s for s in saga.forward_steps if not saga.applies(s, placed.order))
    return SagaView(
        saga_id=placed.saga_id,
        order_id=placed.order.order_id,
        skipped=skipped,
        definition=placed.definition,
        shape=shape,
    )


def fold(view: SagaView, event: Event, routing: Routing) -> SagaView:
    """The view with one more event's facts merged in (pure; order does not matter)."""
    meaning = routing.meaning(event.kind)
    if meaning is None:
        return view
    steps, compensations = dict(view.steps), dict(view.compensations)
    changes: dict[str, object] = {}
    started = routing.starts(event.kind)
    if started is not None:
        begun = StepFacts(started=True, round=event.round)
        steps[started] = steps.get(started, StepFacts()).merge(begun)
    role, step, saga = meaning.role, meaning.step, routing.saga
    if role is Role.CANCEL_REQUESTED:
        changes["cancel"] = Cause(at=event.at, reason=event.reason).earliest(view.cancel)
    elif step is not None and role is Role.RETRY_STEP:
        again = StepFacts(started=True, round=event.round)
        steps[step] = steps.get(step, StepFacts()).merge(again)
    elif step is not None and role in (Role.DONE, Role.FAILED, Role.REFUSED):
        result = {
            Role.DONE: StepStatus.DONE,
            Role.FAILED: StepStatus.FAILED,
            Role.REFUSED: StepStatus.REJECTED,
        }[role]
        known = StepFacts(started=True, result=result, attempts=event.attempts, round=event.round)
        steps[step] = steps.get(step, StepFacts()).merge(known)
        changes.update(_step_consequences(view, event, role, step, saga))
        if role is Role.DONE and event.detail:
            changes["reports"] = {**view.reports, step: event.detail}
    elif step is not None and role in (Role.COMPENSATED, Role.COMPENSATION_FAILED):
        compensation = saga.compensation_of(step)
        assert compensation is not None
        status = event.status if role is Role.COMPENSATED else StepStatus.FAILED
        undone = CompensationFacts(round=event.round, result=status, attempts=event.attempts)
        previous = compensations.get(compensation, CompensationFacts())
        compensations[compensation] = previous.merge(undone)
    return view.model_copy(update={"steps": steps, "compensations": compensations, **changes})


def _step_consequences(
    view: SagaView, event: Event, role: Role, step: str, saga: SagaSpec
) -> dict[str, object]:
    """What a step's result means for the saga: the pivot passed, completed, or a cause."""
    if role is Role.DONE:
        return {
            "pivot_passed": view.pivot_passed or step == saga.pivot,
            "completed": view.completed or step == saga.forward_steps[-1],
        }
    if role is not Role.FAILED:
        return {}
    if saga.after_pivot(step):
        failed = [s for s in (view.onward_failure, step) if s is not None]
        return {"onward_failure": min(failed, key=saga.index)}
    cause = Cause(at=event.at, reason=event.reason, step=step)
    return {"failure": cause.earliest(view.failure)}


def fold_all(view: SagaView, events: Iterable[Event], routing: Routing) -> SagaView:
    for event in events:
        view = fold(view, event, routing)
    return view


def cause(view: SagaView) -> Cause | None:
    """The first thing that turned the saga to compensation (a cancel after the pivot is void)."""
    candidates = [view.failure] if view.failure else []
    if view.cancel is not None and not view.pivot_passed:
        candidates.append(view.cancel)
    return min(candidates, key=lambda c: c.at) if candidates else None


def retry_result(view: SagaView, round: int) -> ActionResult:
    """What a compensation retry round came to: still pending, compensated, or still failing."""
    results = []
    for compensation in view.rounds.get(round, ()):
        facts = view.compensations.get(compensation)
        if facts is None or facts.round < round or facts.result is None:
            return ActionResult.PENDING
        results.append(facts.result)
    if StepStatus.FAILED in results:
        return ActionResult.STILL_FAILING
    return ActionResult.COMPENSATED


def step_retry_result(view: SagaView, round: int) -> ActionResult:
    """What a retry of the step past the pivot came to: completed, failed again (in this round
    or a step after it), or still pending."""
    if view.completed:
        return ActionResult.COMPLETED
    if any(f.round >= round and f.result is StepStatus.FAILED for f in view.steps.values()):
        return ActionResult.STILL_FAILING
    return ActionResult.PENDING


def actions(view: SagaView) -> list[OperatorAction]:
    """The recorded actions, each retry still pending with the result its round came to (a
    retry's result is kept once the next action is recorded: a later round's facts are not
    an earlier round's)."""
    return [_with_result(view, a) for a in view.actions]


def _with_result(view: SagaView, action: OperatorAction) -> OperatorAction:
    if action.result is not ActionResult.PENDING or action.round == 0:
        return action
    derive = step_retry_result if action.action is Action.RETRY_STEP else retry_result
    result = derive(view, action.round)
    if result is ActionResult.COMPENSATED and status_of(view) is not SagaStatus.COMPENSATED:
        # The round's answers are folded a moment before the end is recorded (another
        # transaction): until then the saga still reads NEEDS_INTERVENTION, and so does
        # the action, so that whoever waits for it finds the saga COMPENSATED, as the
        # workflow answers its update only once it closed the order.
        result = ActionResult.PENDING
    return action.model_copy(update={"result": result})


def phase_of(view: SagaView) -> str:
    if status_of(view).terminal:
        return CLOSED
    return COMPENSATING if cause(view) is not None else FORWARD


def status_of(view: SagaView) -> SagaStatus:
    if view.completed:
        return SagaStatus.COMPLETED
    return view.end.status if view.end is not None else SagaStatus.RUNNING


def outcome(view: SagaView, saga: SagaSpec) -> SagaOutcome:
    """The saga's live state in the shape both variants share."""
    first = cause(view)
    failed_step = first.step if first is not None else None
    reason = first.reason if first is not None else None
    if view.onward_failure is not None:
        failed_step, reason = _failing_onward(view, saga) or view.onward_failure, None
    if view.end is not None:
        reason = view.end.reason
    compensations = _compensation_states(view, saga)
    return SagaOutcome(
        saga_id=view.saga_id,
        order_id=view.order_id,
        status=status_of(view),
        reason=None if view.completed else reason,
        failed_step=None if view.completed else failed_step,
        failed_compensations=[s.step for s in compensations if s.status is StepStatus.FAILED],
        steps=[*_forward_states(view, saga), *compensations],
        actions=actions(view),
    )


def _failing_onward(view: SagaView, saga: SagaSpec) -> StepId | None:
    """The first step past the pivot whose latest round failed (an operator's retry may have
    got past the step that failed first)."""
    return next(
        (
            step
            for step in saga.forward_steps
            if saga.after_pivot(step)
            and view.steps.get(step, StepFacts()).result is StepStatus.FAILED
        ),
        None,
    )


def _forward_states(view: SagaView, saga: SagaSpec) -> list[StepState]:
    states = []
    for step in saga.forward_steps:
        facts = view.steps.get(step, StepFacts())
        status, attempts = facts.result, facts.attempts
        if step in view.skipped:
            status = StepStatus.SKIPPED
        elif status is None and facts.started:
            status, attempts = _in_flight_status(view, saga, step), max(attempts, 1)
        states.append(
            StepState(
                step=step,
                phase=Phase.FORWARD,
                status=status or StepStatus.PENDING,
                attempts=attempts if status else 0,
            )
        )
    return states


def _in_flight_status(view: SagaView, saga: SagaSpec, step: str) -> StepStatus:
    """A started step without a result: running, or settled by its compensation."""
    compensation = saga.compensation_of(step)
    undone = view.compensations.get(compensation) if compensation else None
    if undone is None or undone.result is None:
        return StepStatus.RUNNING
    return _SETTLED_BY.get(undone.result, StepStatus.FAILED)


def _compensation_states(view: SagaView, saga: SagaSpec) -> list[StepState]:
    """Compensations in the order they run (reverse step order), the awaited one running."""
    expected = _awaited(view, saga)
    states = []
    for spec in reversed(saga.steps):
        if spec.compensation is None:
            continue
        facts = view.compensations.get(spec.compensation)
        if facts is not None and facts.result is not None:
            status, attempts = facts.result, facts.attempts
        elif spec.compensation == expected:
            status, attempts = StepStatus.RUNNING, 0
        else:
            continue
        states.append(
            StepState(
                step=spec.compensation, phase=Phase.COMPENSATE, status=status, attempts=attempts
            )
        )
    return states


def _needs_undo(view: SagaView, step: str) -> bool:
    """A step that acted (or failed: its own no-op compensation starts the chain)."""
    result = view.steps.get(step, StepFacts()).result
    return result in (StepStatus.DONE, StepStatus.FAILED)


def _awaited(view: SagaView, saga: SagaSpec) -> StepId | None:
    """The compensation the chain waits on: the last step to undo that is not undone yet."""
    if cause(view) is None or view.end is not None or view.completed:
        return None
    for spec in reversed(saga.steps):
        compensation = spec.compensation
        if compensation is None or not _needs_undo(view, spec.name):
            continue
        facts = view.compensations.get(compensation)
        if facts is None or facts.result is None:
            return compensation
    return None


def in_flight(view: SagaView, saga: SagaSpec) -> bool:
    """Whether a forward step was started and nothing says yet how it ended."""
    for step in saga.forward_steps:
        facts = view.steps.get(step, StepFacts())
        if facts.started and facts.result is None and step not in view.skipped:
            compensation = saga.compensation_of(step)
            undone = view.compensations.get(compensation) if compensation else None
            if undone is None or undone.result is None:
                return True
    return False


def decide(view: SagaView, saga: SagaSpec) -> tuple[SagaStatus, ReasonId | None] | None:
    """The end a running saga has reached, or None while something is unconfirmed; a saga
    waiting for an operator becomes COMPENSATED once a retry round left nothing failed."""
    if view.end is not None and view.end.status is SagaStatus.NEEDS_INTERVENTION:
        return _after_retry(view)
    if view.completed or view.end is not None:
        return None
    if view.onward_failure is not None:
        return SagaStatus.NEEDS_INTERVENTION, None  # past the pivot: only a person can finish
    first = cause(view)
    if first is None or in_flight(view, saga) or _awaited(view, saga) is not None:
        return None
    failed = any(facts.result is StepStatus.FAILED for facts in view.compensations.values())
    return (SagaStatus.NEEDS_INTERVENTION if failed else SagaStatus.COMPENSATED), first.reason


def _after_retry(view: SagaView) -> tuple[SagaStatus, ReasonId | None] | None:
    if not view.rounds or view.onward_failure is not None:
        return None
    if retry_result(view, max(view.rounds)) is not ActionResult.COMPENSATED:
        return None
    if any(facts.result is StepStatus.FAILED for facts in view.compensations.values()):
        return None
    return SagaStatus.COMPENSATED, view.end.reason if view.end else None


def acted_steps(view: SagaView, saga: SagaSpec) -> tuple[StepId, ...]:
    """The forward steps done so far, in order (the trail a step past the pivot carries on)."""
    return tuple(
        step
        for step in saga.forward_steps
        if view.steps.get(step, StepFacts()).result is StepStatus.DONE
    )


def started_steps(view: SagaView, saga: SagaSpec) -> tuple[StepId, ...]:
    """The forward steps started or done so far, in order (a cancel's trail)."""
    return tuple(
        step
        for step in saga.forward_steps
        if view.steps.get(step, StepFacts()).started and step not in view.skipped
    )
