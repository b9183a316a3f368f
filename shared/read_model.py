"""The one view model both variants' read APIs return, so the monitor shows them side by side.

Each variant reads its own sources (orchestration: Temporal visibility, the workflow's query and
history; choreography: the tracker's projection and the saga stream) and answers in these
shapes. Times are epoch seconds (floats), so the two engines' clocks compare directly.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import BaseModel, ConfigDict, Field

SagaKey = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
"""A saga or order id as a user types it: the same characters the contracts allow."""
RUN_TAG = re.compile(r"[0-9a-f]{8}")
"""The tag a run of the harness appends to the ids of the orders it places on shared stores
(``ship-1`` is held as ``ship-1-3fa2b1c4``: an order id is placed once, and every run places
the scenario's orders again); the held id is also the saga's id (harness/compare/namespace.py)."""


def is_order(held: str, given: str) -> bool:
    """Whether the order the services hold as ``held`` is the order ``given``: the same id,
    or that id with a run's tag (so an order is found by the id it was given)."""
    if held == given:
        return True
    head, _, tag = held.rpartition("-")
    return head == given and RUN_TAG.fullmatch(tag) is not None


class ListedStatus(StrEnum):
    """What the list shows: the outcome vocabulary plus COMPENSATING while undoing."""

    RUNNING = "RUNNING"
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"
    NEEDS_INTERVENTION = "NEEDS_INTERVENTION"
    REJECTED = "REJECTED"

    @property
    def in_flight(self) -> bool:
        return self in (ListedStatus.RUNNING, ListedStatus.COMPENSATING)


ENDED = (
    ListedStatus.COMPLETED,
    ListedStatus.COMPENSATED,
    ListedStatus.NEEDS_INTERVENTION,
    ListedStatus.REJECTED,
)
"""The ends counted per minute. A saga waiting for an operator is settled but still open (its
workflow stays open in orchestration); it counts as ended NEEDS_INTERVENTION once resolved."""
MAX_ALERT_CANDIDATES = 50
"""Running sagas checked per refresh (the oldest in choreography; in orchestration the newest
of those older than the quiet time, and the newest of the younger ones, whose deadline is read
once each, as visibility cannot sort): each costs one read of the engine."""
LATENCY_WINDOW_S = 300.0
"""Latency percentiles are over the sagas that settled this long ago at most ..."""
MAX_LATENCY_SAMPLES = 500
"""... and over this many of them at most."""


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class SagaQuery(_View):
    """One page of the list: filters, a search, and the key of the previous page's last row."""

    statuses: tuple[ListedStatus, ...] = ()
    """Empty: every status."""
    step: str | None = None
    """The step in flight, or the one a person must finish."""
    min_age_s: float | None = None
    max_age_s: float | None = None
    search: SagaKey | None = None
    """A saga id (exactly), or an order id as given: held as is, or with a run's tag."""
    after: PageKey | None = None
    """Only sagas listed after this key (the previous page's last row)."""
    limit: int = Field(default=50, ge=1, le=200)


class SagaRow(_View):
    """One saga in the list, whatever its style (``order_id`` as the services hold it)."""

    variant: str
    saga_id: str
    order_id: str
    status: ListedStatus
    reason: str | None = None
    step: str | None = None
    started_at: float
    ended_at: float | None = None
    version: str | None = None
    """The saga definition's version it runs (``v1``), where the engine records it."""


class PageKey(_View):
    """Where a page of the list ends: open sagas first (newest start first), then ended ones
    (latest end first) — the order Temporal's visibility lists in, kept for both styles."""

    open: bool
    at: float

    @staticmethod
    def of(row: SagaRow) -> PageKey:
        if row.ended_at is None:
            return PageKey(open=True, at=row.started_at)
        return PageKey(open=False, at=row.ended_at)

    def sort_key(self) -> tuple[bool, float]:
        """Descending sort key: open before ended, later before earlier."""
        return (self.open, self.at)


class StepView(_View):
    """One forward step or compensation: status, attempts and, where known, when it ran."""

    step: str
    phase: str
    status: str
    attempts: int
    started_at: float | None = None
    ended_at: float | None = None
    round: int = 0
    """0: the saga's own run; n: an operator's n-th retry (of its failed compensations, or of
    its failed step past the pivot); a step that ran in several rounds has one view per
    round, oldest first."""

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return max(0.0, self.ended_at - self.started_at)


class RawEntry(_View):
    """One line of the engine's own record: a stream message or a history event."""

    at: float
    name: str
    detail: str = ""


class ActionView(_View):
    """An operator action recorded on the saga: who, when, what, and what came of it."""

    action: str
    who: str
    at: float
    note: str = ""
    result: str = ""


class SagaDetail(_View):
    """One saga: its row, step timeline, raw record, trace and where else to look at it."""

    row: SagaRow
    steps: list[StepView]
    entries: list[RawEntry]
    entries_title: str
    """What the raw list is: "stream events" or "workflow history"."""
    failed_step: str | None = None
    failed_compensations: list[str] = Field(default_factory=list)
    deadline_at: float | None = None
    trace_id: str | None = None
    engine_url: str | None = None
    """The engine's own page for this saga (the Temporal Web UI), when there is one."""
    actions: list[ActionView] = Field(default_factory=list)
    waiting_on: str | None = None
    """A semantic lock the running saga waits on, as the service holding it says (another
    saga's pending points, docs/anomalies.md); None when it waits on nothing."""

    @property
    def waiting(self) -> bool:
        """Waiting for an operator: NEEDS_INTERVENTION, and no action resolved or compensated
        it (nor is one still under way)."""
        if self.row.status is not ListedStatus.NEEDS_INTERVENTION:
            return False
        return not any(a.result in _SETTLING for a in self.actions)


_SETTLING = ("resolved", "compensated", "completed", "pending")
"""Action results after which a saga does not wait for an operator (now or any more): values
of `shared.contracts.ActionResult`."""


class AlertKind(StrEnum):
    """Why a running saga is listed at the top."""

    NO_PROGRESS = "no_progress"
    DEADLINE_NEAR = "deadline_near"
    DEADLINE_PASSED = "deadline_passed"
    REFUSED = "refused"
    """A worker or a consumer refused the saga: made by a definition it does not hold."""


class Alert(_View):
    """A running saga worth a look: quiet for too long, or near or past its deadline."""

    row: SagaRow
    kinds: tuple[AlertKind, ...]
    last_progress_at: float | None = None
    deadline_at: float | None = None
    reason: str | None = None
    """Why it was refused (the one line the worker or consumer gave), for REFUSED."""


class InterventionView(_View):
    """A saga waiting for a person: which compensations failed, since when."""

    row: SagaRow
    failed_compensations: list[str]
    since: float


class Counters(_View):
    """One style's counters: in flight, ends in the last minute, latency of recent ends."""

    variant: str
    in_flight: int
    ended_last_minute: dict[ListedStatus, int]
    latencies_s: list[float]
    """Start to end of the most recent ends (as the engine records them), for percentiles."""


class ReadModel(Protocol):
    """What each variant's read API answers; the monitor reads both through this alone."""

    variant: str

    async def list_sagas(self, query: SagaQuery, now: float) -> list[SagaRow]:
        """Newest first, at most ``query.limit`` rows matching every filter."""
        ...

    async def saga(self, saga_id: str) -> SagaDetail | None:
        """One saga with its timeline and raw record; None when there is no such saga."""
        ...

    async def interventions(self) -> list[InterventionView]:
        """Sagas waiting for a person, oldest first."""
        ...

    async def alerts(self, now: float, quiet_s: float, warn_s: float) -> list[Alert]:
        """Running sagas quiet for longer than ``quiet_s``, or within ``warn_s`` of (or past)
        their deadline."""
        ...

    async def counters(self, now: float) -> Counters:
        """In flight, ends in the last minute, latencies of recent ends."""
        ...


def alert_kinds(
    now: float,
    last_progress_at: float | None,
    deadline_at: float | None,
    quiet_s: float,
    warn_s: float,
) -> tuple[AlertKind, ...]:
    """The reasons to list a running saga at the top (none: it is fine)."""
    kinds: list[AlertKind] = []
    if last_progress_at is not None and now - last_progress_at > quiet_s:
        kinds.append(AlertKind.NO_PROGRESS)
    if deadline_at is not None and now >= deadline_at:
        kinds.append(AlertKind.DEADLINE_PASSED)
    elif deadline_at is not None and deadline_at - now <= warn_s:
        kinds.append(AlertKind.DEADLINE_NEAR)
    return tuple(kinds)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a W3C ``traceparent`` (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").split("-")
    if len(parts) != 4 or len(parts[1]) != 32:
        return None
    return parts[1]


def found_by(row: SagaRow, search: str | None) -> bool:
    """Whether a row answers a search (no search: every row does)."""
    return search is None or row.saga_id == search or is_order(row.order_id, search)
