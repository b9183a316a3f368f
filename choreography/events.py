"""Saga events: kinds and subjects derived from the saga spec, the envelope, and the routing.

Subjects are ``saga.<token>.<event>.<saga_id>``, events in past tense. The token is the
service's (``order`` for the orders service); the event is the step's past-tense name from the
spec (``inventory.reserved``, ``payment.refunded``) or one every step shares (``failed``,
``refused``, ``skipped``, ``compensation_failed``). The last token is the saga id: an order id
may be run more than once (the harness re-runs scenarios), a saga id never is, and it is what
the consumers order and dedupe by.

`Routing` derives from one `SagaSpec` everything the choreography needs to route: each kind's
meaning, each step's triggers and the hand-backs that may address it, and so each consumer's
filter. Nothing here names a particular step.

An event carries everything the next participant needs: the order, the policy, when the saga
started and the trail of forward steps that acted so far, and the saga definition it belongs
to (a participant holding another refuses it). Nobody reads another service's store, and a
compensation is only ever addressed to a service on the trail. Nothing in an event is there
for testing: test middleware reaches a process out of band, at its seams (`shared/steps.py`).

**Envelope versions** (docs/versioning.md). Release 1 of the code writes the envelope as it
always was; release 2 adds what the step reported (``detail``: the charge's amount as money)
and says so (``envelope: 2``); a body without ``envelope`` is version 1. `UPCASTERS` turn an
older envelope into the next one on read, as the ``eventsourcing`` library's
``upcast_v1_v2`` does (`choreography/versions.py` decides who reads what).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

from shared.contracts import (
    OrderRequest,
    ReasonId,
    SagaPolicy,
    ServiceName,
    StepId,
    StepName,
    StepStatus,
)
from shared.definition import DefinitionRef, SagaDefinition
from shared.saga import SagaSpec, StepSpec
from shared.services.payment_v2 import money

ROOT = "saga"
SAGA_ID_HEADER = "Saga-Id"
MSG_ID_HEADER = "Nats-Msg-Id"
HOME = "order"
"""The token of the saga's own events (the orders service places and cancels)."""

Kind = Annotated[str, Field(pattern=r"^[a-z][a-z_]*\.[a-z][a-z_]*$")]
"""An event kind, ``<token>.<event>``; the subject adds the root and the saga id."""

PLACED: Kind = f"{HOME}.placed"
CANCEL_REQUESTED: Kind = f"{HOME}.cancel_requested"


class Role(StrEnum):
    """What a kind says about its step."""

    PLACED = "placed"
    CANCEL_REQUESTED = "cancel_requested"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    REFUSED = "refused"
    """A fenced step refusing its late trigger: hands the chain back, undoes nothing."""
    COMPENSATED = "compensated"
    COMPENSATION_FAILED = "compensation_failed"
    RETRY_COMPENSATION = "retry_compensation"
    """A command, not an event: an operator asks the service to run its compensation again."""
    RETRY_STEP = "retry_step"
    """A command, not an event: an operator asks the service to run its step past the pivot
    again (the saga waits for one since that step failed)."""


SHARED_EVENTS = {
    Role.FAILED: "failed",
    Role.SKIPPED: "skipped",
    Role.REFUSED: "refused",
    Role.COMPENSATION_FAILED: "compensation_failed",
    Role.RETRY_COMPENSATION: "retry_compensation",
    Role.RETRY_STEP: "retry_step",
}
"""The past-tense names every step shares (the others come from the spec)."""

HANDBACK_ROLES = (Role.COMPENSATED, Role.COMPENSATION_FAILED, Role.REFUSED)
"""Events that pass the compensation chain to the previous service that acted."""


@dataclass(frozen=True)
class Meaning:
    """A kind read back: its role and the forward step it is about (None for the saga's own)."""

    role: Role
    step: StepId | None = None


class Routing:
    """Every kind, trigger and hand-back of one saga definition's spec."""

    def __init__(self, definition: SagaDefinition) -> None:
        self.definition = definition
        self.saga: SagaSpec = definition.spec

    def kind(self, role: Role, step: str) -> Kind:
        """The kind of ``role`` for a step (a compensation's name means its forward step)."""
        spec = self.saga.step(step)
        if role is Role.DONE:
            event = spec.done
        elif role is Role.COMPENSATED:
            if spec.compensated is None:
                raise ValueError(f"step {spec.name} has no compensation")
            event = spec.compensated
        else:
            event = SHARED_EVENTS[role]
        return f"{spec.subject_token}.{event}"

    def done(self, step: str) -> Kind:
        return self.kind(Role.DONE, step)

    def failed(self, step: str) -> Kind:
        return self.kind(Role.FAILED, step)

    def skipped(self, step: str) -> Kind:
        return self.kind(Role.SKIPPED, step)

    def refused(self, step: str) -> Kind:
        return self.kind(Role.REFUSED, step)

    def compensated(self, step: str) -> Kind:
        return self.kind(Role.COMPENSATED, step)

    def compensation_failed(self, step: str) -> Kind:
        return self.kind(Role.COMPENSATION_FAILED, step)

    def retry_compensation(self, step: str) -> Kind:
        return self.kind(Role.RETRY_COMPENSATION, step)

    def retry_step(self, step: str) -> Kind:
        return self.kind(Role.RETRY_STEP, step)

    @cached_property
    def meanings(self) -> dict[str, Meaning]:
        """Every kind of the saga and what it says."""
        found = {PLACED: Meaning(Role.PLACED), CANCEL_REQUESTED: Meaning(Role.CANCEL_REQUESTED)}
        for spec in self.saga.steps:
            for role in self._roles(spec):
                found[self.kind(role, spec.name)] = Meaning(role, spec.name)
        return found

    def _roles(self, spec: StepSpec) -> tuple[Role, ...]:
        roles = [Role.DONE, Role.FAILED]
        if spec.skip_unless is not None:
            roles.append(Role.SKIPPED)
        if spec.compensation is not None:
            roles += [
                Role.REFUSED,
                Role.COMPENSATED,
                Role.COMPENSATION_FAILED,
                Role.RETRY_COMPENSATION,
            ]
        else:
            roles.append(Role.RETRY_STEP)  # past the pivot: an operator may run it again
        return tuple(roles)

    def meaning(self, kind: str) -> Meaning | None:
        return self.meanings.get(kind)

    def triggers(self, step: str) -> tuple[Kind, ...]:
        """The events that start a forward step: the previous step's done (or skipped)."""
        index = self.saga.index(step)
        if index == 0:
            return (PLACED,)
        previous = self.saga.steps[index - 1]
        kinds = [self.done(previous.name)]
        if previous.skip_unless is not None:
            kinds.append(self.skipped(previous.name))  # a skippable step always answers
        return tuple(kinds)

    def starts(self, kind: str) -> StepId | None:
        """The forward step an event sets in flight (its trigger reached the next service)."""
        return self._starts.get(kind)

    @cached_property
    def _starts(self) -> dict[str, StepId]:
        return {kind: spec.name for spec in self.saga.steps for kind in self.triggers(spec.name)}

    def handback_sources(self, step: str) -> tuple[Kind, ...]:
        """Hand-backs that may address ``step``: from later steps, jumping skippable ones."""
        kinds: list[Kind] = []
        for later in self.saga.steps[self.saga.index(step) + 1 :]:
            if later.compensation is None:
                break
            kinds += [self.kind(role, later.name) for role in HANDBACK_ROLES]
            if later.skip_unless is None:
                break
        return tuple(kinds)

    def previous_actor(self, trail: tuple[str, ...], before: str) -> StepId | None:
        """The last forward step on the trail ahead of ``before``: whose turn it is to undo."""
        order = self.saga.index(before)
        earlier = [step for step in trail if self.saga.index(step) < order]
        return earlier[-1] if earlier else None

    def parse_subject(self, value: str) -> tuple[Kind, str] | None:
        """The kind and saga id of one of this saga's subjects, or None for anything else."""
        parts = value.split(".")
        if len(parts) != 4 or parts[0] != ROOT:
            return None
        kind = f"{parts[1]}.{parts[2]}"
        return (kind, parts[3]) if kind in self.meanings else None


def subject(kind: str, saga_id: str) -> str:
    return f"{ROOT}.{kind}.{saga_id}"


def pattern(kind: str) -> str:
    """The consumer filter for this kind across every saga."""
    return f"{ROOT}.{kind}.*"


def template(kind: str) -> str:
    """The destination template (OTel ``messaging.destination.template``) span names use."""
    return f"{ROOT}.{kind}.{{saga_id}}"


def saga_key(value: str) -> str:
    """The saga id token of a subject, used to keep one saga's events in order."""
    return value.rsplit(".", 1)[-1]


def event_id(saga_id: str, kind: str, round: int = 0) -> str:
    """Deterministic: a saga emits each kind at most once per round, so a repeat is a duplicate
    (an operator's retry round n emits its own events)."""
    return f"{saga_id}:{kind}" if round == 0 else f"{saga_id}:{kind}#{round}"


class Event(BaseModel):
    """The envelope of every saga event: the saga's data travels with it, hop to hop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    kind: Kind
    saga_id: str
    order: OrderRequest
    policy: SagaPolicy = Field(default_factory=SagaPolicy)
    definition: DefinitionRef
    """The saga definition the saga runs: a participant holding another refuses the event."""
    started_at: float
    """Wall-clock start of the saga (epoch seconds): the business deadline counts from it."""
    trail: tuple[StepId, ...] = ()
    """Forward steps that acted (or, on a cancel, were started) so far, in order."""
    step: StepId | None = None
    status: StepStatus | None = None
    attempts: int = 0
    reason: ReasonId | None = None
    message: str = ""
    at: float = 0.0
    """When what the event reports happened (epoch seconds): the earliest cause wins."""
    round: int = 0
    """An operator's retry round, of a compensation or of a step past the pivot (0: the
    saga's own chain); a step's answer carries its trigger's round."""
    detail: dict[str, Any] = Field(default_factory=dict)
    """Envelope 2: what the step reported (the charge's amount as money); not written in 1."""
    envelope: int = Field(default=1, ge=1)
    """The envelope's version: the release of the code that wrote it (absent: 1)."""

    @model_serializer(mode="wrap")
    def _in_its_envelope(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Version 1 is written exactly as release 1 wrote it (no ``detail``, no version)."""
        data: dict[str, Any] = handler(self)
        if self.envelope == 1:
            data.pop("detail", None)
            data.pop("envelope", None)
        return data

    def in_envelope(self, version: int) -> Event:
        """The same event as the code of ``version`` writes it."""
        return self.model_copy(update={"envelope": version})

    @property
    def subject(self) -> str:
        return subject(self.kind, self.saga_id)

    @property
    def deadline_at(self) -> float:
        return self.started_at + self.policy.deadline_s

    def follow(self, kind: str, *, round: int = 0, **changes: object) -> Event:
        """The next event of the same saga, carrying the saga's data on (happening now)."""
        fields: dict[str, object] = {
            "event_id": event_id(self.saga_id, kind, round),
            "kind": kind,
            "step": None,
            "status": None,
            "attempts": 0,
            "message": "",
            "at": time.time(),
            "round": round,
            "detail": {},
        }
        fields.update(changes)
        return self.model_copy(update=fields)


def placed(
    saga_id: str,
    order: OrderRequest,
    policy: SagaPolicy,
    started_at: float,
    definition: DefinitionRef,
    envelope: int = 1,
) -> Event:
    """The saga's first event, written with the order record (in the writer's envelope)."""
    return Event(
        event_id=event_id(saga_id, PLACED),
        kind=PLACED,
        saga_id=saga_id,
        order=order,
        policy=policy,
        definition=definition,
        started_at=started_at,
        at=started_at,
        envelope=envelope,
    )


CHARGED: Kind = f"{ServiceName.PAYMENT.value}.charged"
"""Release 1's ``payment.charged``: the one report whose detail release 2 reads."""


def upcast_v1_v2(state: dict[str, Any]) -> dict[str, Any]:
    """An envelope-1 event as release 2 reads it: ``detail`` added, with the charge's amount as
    money derived from the order (a charge takes the order's total), empty for the others."""
    detail: dict[str, Any] = {}
    if state.get("kind") == CHARGED and state.get("step") == StepName.CHARGE_PAYMENT:
        detail = {"amount": money(OrderRequest.model_validate(state["order"]).total_cents)}
    return {**state, "detail": detail, "envelope": 2}


UPCASTERS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: upcast_v1_v2}
"""From each envelope version to the next, applied in turn on read."""
LATEST = 2
"""The newest envelope this code can write."""


def upcast(state: dict[str, Any], to: int) -> dict[str, Any]:
    """An event body in envelope ``to`` (raises KeyError when no upcaster leads there)."""
    version = int(state.get("envelope", 1))
    while version < to:
        state = UPCASTERS[version](state)
        version = int(state["envelope"])
    return state
