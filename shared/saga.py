"""The saga declared once: its steps in order, their services, events and compensations, the pivot.

Both variants derive everything from a `SagaSpec`: the choreography its event kinds, subjects,
triggers, hand-backs, consumer filters and reactions; the orchestration its activities (the
spec travels in the workflow's input). A spec is part of a `SagaDefinition`
(`shared/definition.py`); adding a step is one `StepSpec` in a definition plus the service that
implements it — the variants' code does not change.

A spec is data (a frozen pydantic model), so it can cross a process boundary unchanged.
"""

from __future__ import annotations

from functools import cached_property
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.contracts import (
    OrderRequest,
    Phase,
    Reason,
    ReasonId,
    ServiceId,
    ServiceName,
    StepId,
    StepName,
)

EventName = str
"""A past-tense event name as it appears in subjects (``reserved``, ``released``)."""


class StepSpec(BaseModel):
    """One forward step: who runs it, what it is called when done, and how it is undone.

    Steps up to and including the pivot have a compensation; steps after it have none and
    are retried until they succeed (a business failure there needs a person).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StepId
    service: ServiceId
    done: EventName = Field(pattern=r"^[a-z][a-z_]*$")
    """The past-tense event the service emits when the step is done."""
    compensation: StepId | None = None
    compensated: EventName | None = Field(default=None, pattern=r"^[a-z][a-z_]*$")
    """The past-tense event of the compensation (``released`` for ``release_inventory``)."""
    failure_reason: ReasonId | None = None
    """Why the saga compensates when this step says no (None after the pivot)."""
    pivot: bool = False
    skip_unless: str | None = None
    """An integer field of the order: the step is skipped (not run) when it is 0."""
    token: str | None = Field(default=None, pattern=r"^[a-z][a-z_]*$")
    """The service's token in subjects, when it differs from its name (orders speak as
    ``order``)."""

    @model_validator(mode="after")
    def _compensation_has_an_event(self) -> Self:
        if (self.compensation is None) != (self.compensated is None):
            raise ValueError(f"step {self.name}: a compensation needs its past-tense event")
        if self.skip_unless is not None and self.skip_unless not in OrderRequest.model_fields:
            raise ValueError(f"step {self.name}: the order has no field {self.skip_unless!r}")
        return self

    @property
    def subject_token(self) -> str:
        return self.token or self.service

    def applies(self, order: OrderRequest) -> bool:
        """Whether the step runs for this order (a step skipped here is reported skipped)."""
        return self.skip_unless is None or bool(getattr(order, self.skip_unless))


class SagaSpec(BaseModel):
    """The steps in order; exactly one is the pivot, and only steps up to it compensate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: tuple[StepSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _well_formed(self) -> Self:
        names = [s.name for s in self.steps] + [
            s.compensation for s in self.steps if s.compensation
        ]
        if len(names) != len(set(names)):
            raise ValueError("step and compensation names must be unique")
        pivots = [i for i, s in enumerate(self.steps) if s.pivot]
        if len(pivots) != 1:
            raise ValueError("a saga has exactly one pivot step")
        for index, step in enumerate(self.steps):
            if (step.compensation is None) != (index > pivots[0]):
                raise ValueError(f"step {step.name}: compensations are for steps up to the pivot")
        return self

    @cached_property
    def _by_name(self) -> dict[str, StepSpec]:
        found = {s.name: s for s in self.steps}
        found.update({s.compensation: s for s in self.steps if s.compensation})
        return found

    def step(self, name: str) -> StepSpec:
        """The forward step a name belongs to (a compensation's name maps to its step)."""
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"the saga has no step {name!r}") from None

    def knows(self, name: str) -> bool:
        return name in self._by_name

    def phase_of(self, name: str) -> Phase:
        return Phase.FORWARD if self.step(name).name == name else Phase.COMPENSATE

    def compensation_of(self, name: str) -> StepId | None:
        return self.step(name).compensation

    def forward_of(self, compensation: str) -> StepId:
        return self.step(compensation).name

    def service_of(self, name: str) -> ServiceId:
        return self.step(name).service

    def applies(self, name: str, order: OrderRequest) -> bool:
        return self.step(name).applies(order)

    def index(self, name: str) -> int:
        """The position of a step (or of the step a compensation undoes), from 0."""
        return self.forward_steps.index(self.step(name).name)

    @cached_property
    def forward_steps(self) -> tuple[StepId, ...]:
        return tuple(s.name for s in self.steps)

    @cached_property
    def compensations(self) -> tuple[StepId, ...]:
        return tuple(s.compensation for s in self.steps if s.compensation)

    @cached_property
    def pivot(self) -> StepId:
        return next(s.name for s in self.steps if s.pivot)

    def after_pivot(self, name: str) -> bool:
        """Whether a forward step comes after the pivot (past it the saga only goes forward)."""
        return self.index(name) > self.index(self.pivot)

    @cached_property
    def services(self) -> tuple[ServiceId, ...]:
        """Every service the saga uses, in the order of its first step."""
        return tuple(dict.fromkeys(s.service for s in self.steps))

    def steps_of(self, service: str) -> tuple[StepSpec, ...]:
        return tuple(s for s in self.steps if s.service == service)

    def extended(self, step: StepSpec, *, after: str) -> SagaSpec:
        """A copy with ``step`` inserted after the named step (a spec is never mutated)."""
        at = self.forward_steps.index(after) + 1
        return SagaSpec(steps=(*self.steps[:at], step, *self.steps[at:]))


SAGA = SagaSpec(
    steps=(
        StepSpec(
            name=StepName.RESERVE_INVENTORY,
            service=ServiceName.INVENTORY,
            done="reserved",
            compensation=StepName.RELEASE_INVENTORY,
            compensated="released",
            failure_reason=Reason.OUT_OF_STOCK,
        ),
        StepSpec(
            name=StepName.CHARGE_PAYMENT,
            service=ServiceName.PAYMENT,
            done="charged",
            compensation=StepName.REFUND_PAYMENT,
            compensated="refunded",
            failure_reason=Reason.PAYMENT_DECLINED,
        ),
        StepSpec(
            name=StepName.DEDUCT_POINTS,
            service=ServiceName.POINTS,
            done="deducted",
            compensation=StepName.RESTORE_POINTS,
            compensated="restored",
            failure_reason=Reason.INSUFFICIENT_POINTS,
            skip_unless="points_to_use",
        ),
        StepSpec(
            name=StepName.CREATE_SHIPMENT,
            service=ServiceName.SHIPPING,
            done="created",
            compensation=StepName.CANCEL_SHIPMENT,
            compensated="cancelled",
            failure_reason=Reason.SHIPMENT_FAILED,
            pivot=True,
        ),
        StepSpec(
            name=StepName.COMPLETE_ORDER,
            service=ServiceName.ORDERS,
            done="completed",
            token="order",
        ),
    )
)
"""The order saga's spec, version 1 (`shared/definitions.py` makes it a definition)."""
