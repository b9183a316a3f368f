"""The choreography's read API for the monitor: the tracker's projection and the saga stream.

Lists, counters and the intervention queue come from the tracker's ``sagas`` table in the
orders store (one row per saga: the view every saga event is folded into, and the columns
derived from it); one saga's steps and operator actions from its view; its events, their
times and the last progress of a quiet saga from the ``SAGA`` stream, read by subject through
the broker. Nothing here writes, and nothing reads another service's tables.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from choreography.broker import DLQ_STREAM, SAGA_STREAM
from choreography.events import Meaning, Role, Routing
from choreography.projection import COMPENSATING, outcome
from choreography.versions import Reader
from choreography.views import Views
from shared.contracts import OperatorAction, SagaOutcome, SagaStatus, StepState, StepStatus
from shared.definition import REFUSAL_MARK, SagaDefinition
from shared.read_model import (
    LATENCY_WINDOW_S,
    MAX_ALERT_CANDIDATES,
    MAX_LATENCY_SAMPLES,
    ActionView,
    Alert,
    AlertKind,
    Counters,
    InterventionView,
    ListedStatus,
    RawEntry,
    SagaDetail,
    SagaQuery,
    SagaRow,
    StepView,
    alert_kinds,
    found_by,
    trace_id_of,
)
from shared.saga import SagaSpec
from shared.store import Store

VARIANT = "choreography"
MAX_EVENTS = 500
"""A saga emits a dozen events; a cap keeps a pathological one from flooding the page."""

_COLUMNS = (
    "SELECT s.saga_id, s.order_id, s.status, s.phase, s.reason, s.failed_step, s.started_at,"
    " s.settled_at, s.ended_at, s.deadline_at, s.running_step, s.failed_compensation, s.placed"
)
_ROW = f"{_COLUMNS} FROM sagas s"
"""A saga's list row: its state, the step in flight and the first failed compensation."""
_IN_STEP = (
    "((s.status = 'RUNNING' AND s.running_step = ?) OR (s.status = 'NEEDS_INTERVENTION' AND"
    " (s.failed_step = ? OR s.failed_compensation = ?)))"
)
_IS_OPEN = "(s.status = 'RUNNING' OR s.waiting = 1)"
"""Open: in flight, or waiting for an operator (as its workflow stays open in orchestration)."""
_OPEN = f"(CASE WHEN {_IS_OPEN} THEN 1 ELSE 0 END)"
_SORT_AT = f"(CASE WHEN {_IS_OPEN} THEN s.started_at ELSE s.ended_at END)"
"""The list's order (PageKey): open sagas by start, then ended ones by end, newest first."""
_STATUS_SQL: Mapping[ListedStatus, str] = {
    ListedStatus.RUNNING: f"(s.status = 'RUNNING' AND s.phase <> '{COMPENSATING}')",
    ListedStatus.COMPENSATING: f"(s.status = 'RUNNING' AND s.phase = '{COMPENSATING}')",
    ListedStatus.COMPLETED: "s.status = 'COMPLETED'",
    ListedStatus.COMPENSATED: "s.status = 'COMPENSATED'",
    ListedStatus.NEEDS_INTERVENTION: "s.status = 'NEEDS_INTERVENTION'",
    ListedStatus.REJECTED: "s.status = 'REJECTED'",
}


class ChoreographyReadModel:
    """Read API over the orders store's projection and the broker's saga stream."""

    variant = VARIANT

    def __init__(
        self,
        store: Store,
        js: JetStreamContext,
        definition: SagaDefinition,
        stream: str = SAGA_STREAM,
        views: Views | None = None,
    ) -> None:
        self.store = store
        self.js = js
        self.stream = stream
        self.definition = definition
        self.saga_spec: SagaSpec = definition.spec
        # A reader only: it upcasts any stored view it can, so a saga of an earlier
        # definition shows its own steps (docs/versioning.md).
        self.views = views or Views(Reader(definition, "stored-upcast"))

    async def list_sagas(self, query: SagaQuery, now: float) -> list[SagaRow]:
        where, params = _where(query, now)
        sql = f"{_ROW}{where} ORDER BY {_OPEN} DESC, {_SORT_AT} DESC LIMIT ?"
        rows = await self.store.query(sql, (*params, query.limit))
        return [row for row in map(_saga_row, rows) if found_by(row, query.search)]

    async def saga(self, saga_id: str) -> SagaDetail | None:
        found = await self.store.query(
            f"{_COLUMNS}, s.traceparent, s.view FROM sagas s WHERE s.saga_id = ?", (saga_id,)
        )
        if not found:
            return None
        row = found[0]
        view = self.views.load(row["view"], row["placed"])
        current = outcome(view, self.views.spec_of(view))
        messages = await self._messages(saga_id)
        return SagaDetail(
            row=_saga_row(row),
            steps=_timeline(current.steps, messages, self.views.routing_of(view)),
            entries=[_entry(m) for m in messages],
            entries_title="stream events",
            failed_step=row["failed_step"],
            failed_compensations=[str(step) for step in current.failed_compensations],
            deadline_at=row["deadline_at"],
            trace_id=trace_id_of(row["traceparent"]),
            actions=[_action(action) for action in current.actions],
        )

    async def interventions(self) -> list[InterventionView]:
        rows = await self.store.query(
            f"{_COLUMNS}, s.view FROM sagas s WHERE s.waiting = 1 ORDER BY s.settled_at"
        )
        return [
            InterventionView(
                row=_saga_row(r),
                failed_compensations=[str(step) for step in self._outcome(r).failed_compensations],
                since=r["settled_at"] or r["started_at"],
            )
            for r in rows
        ]

    def _outcome(self, row: Mapping[str, Any]) -> SagaOutcome:
        view = self.views.load(row["view"], row["placed"])
        return outcome(view, self.views.spec_of(view))

    async def alerts(self, now: float, quiet_s: float, warn_s: float) -> list[Alert]:
        rows = await self.store.query(
            f"{_ROW} WHERE s.status = 'RUNNING' AND (s.started_at < ? OR s.deadline_at < ?)"
            " ORDER BY s.started_at LIMIT ?",
            (now - quiet_s, now + warn_s, MAX_ALERT_CANDIDATES),
        )
        progress = await asyncio.gather(*(self._last_progress(r["saga_id"]) for r in rows))
        refusals = await asyncio.gather(*(self._refusal(r["saga_id"]) for r in rows))
        alerts = []
        for row, last, refusal in zip(rows, progress, refusals, strict=True):
            kinds = alert_kinds(now, last, row["deadline_at"], quiet_s, warn_s)
            if refusal is not None:
                kinds = (*kinds, AlertKind.REFUSED)
            if kinds:
                alerts.append(
                    Alert(
                        row=_saga_row(row),
                        kinds=kinds,
                        last_progress_at=last,
                        deadline_at=row["deadline_at"],
                        reason=refusal,
                    )
                )
        return alerts

    async def counters(self, now: float) -> Counters:
        flying = await self.store.query("SELECT count(*) AS n FROM sagas WHERE status = 'RUNNING'")
        # By the time each saga reached its status: one waiting for an operator counts as
        # NEEDS_INTERVENTION when it got there, as the orchestration counts it.
        ended = await self.store.query(
            "SELECT status, count(*) AS n FROM sagas WHERE status <> 'RUNNING'"
            " AND settled_at >= ? GROUP BY status",
            (now - 60.0,),
        )
        recent = await self.store.query(
            "SELECT settled_at - started_at AS took FROM sagas WHERE status <> 'RUNNING'"
            " AND settled_at >= ? ORDER BY settled_at DESC LIMIT ?",
            (now - LATENCY_WINDOW_S, MAX_LATENCY_SAMPLES),
        )
        return Counters(
            variant=VARIANT,
            in_flight=int(flying[0]["n"]),
            ended_last_minute={ListedStatus(r["status"]): int(r["n"]) for r in ended},
            latencies_s=[float(r["took"]) for r in recent],
        )

    async def _messages(self, saga_id: str) -> list[RawStreamMsg]:
        """The saga's events in stream order (its subjects end in its id)."""
        messages: list[RawStreamMsg] = []
        seq = 1
        while len(messages) < MAX_EVENTS:
            try:
                msg = await self.js.get_msg(self.stream, seq, _subjects(saga_id), next=True)
            except NotFoundError:
                break
            messages.append(msg)
            seq = (msg.seq or seq) + 1
        return messages

    async def _last_progress(self, saga_id: str) -> float | None:
        """When the saga's last event reached the stream."""
        try:
            msg = await self.js.get_last_msg(self.stream, _subjects(saga_id))
        except NotFoundError:
            return None
        return msg.time.timestamp() if msg.time else None

    async def _refusal(self, saga_id: str) -> str | None:
        """The reason a consumer dead-lettered one of the saga's events for its definition
        (a process of another release refused it), if one did."""
        try:
            info = await self.js.stream_info(
                DLQ_STREAM, subjects_filter=f"dlq.*.{_subjects(saga_id)}"
            )
            for subject in info.state.subjects or {}:
                letter = await self.js.get_last_msg(DLQ_STREAM, subject)
                reason = str((letter.headers or {}).get("Dlq-Reason", ""))
                if REFUSAL_MARK in reason:
                    return reason
        except NotFoundError:
            return None
        return None


def _subjects(saga_id: str) -> str:
    return f"saga.*.*.{saga_id}"


def _where(query: SagaQuery, now: float) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.statuses:
        clauses.append("(" + " OR ".join(_STATUS_SQL[s] for s in query.statuses) + ")")
    if query.step is not None:
        clauses.append(_IN_STEP)
        params += [query.step] * 3
    if query.min_age_s is not None:
        clauses.append("s.started_at <= ?")
        params.append(now - query.min_age_s)
    if query.max_age_s is not None:
        clauses.append("s.started_at >= ?")
        params.append(now - query.max_age_s)
    if query.search is not None:
        # The order id as given, or as a run placed it (a tag after it: found_by checks it).
        clauses.append("(s.saga_id = ? OR s.order_id = ? OR s.order_id LIKE ? ESCAPE '!')")
        tagged = query.search.replace("_", "!_") + "-" + "_" * 8
        params += [query.search, query.search, tagged]
    if query.after is not None and query.after.open:
        clauses.append(f"(NOT {_IS_OPEN} OR s.started_at < ?)")
        params.append(query.after.at)
    elif query.after is not None:
        clauses.append(f"(NOT {_IS_OPEN} AND s.ended_at < ?)")
        params.append(query.after.at)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _saga_row(row: Mapping[str, Any]) -> SagaRow:
    status = SagaStatus(row["status"])
    listed = ListedStatus(status.value)
    if status is SagaStatus.RUNNING and row["phase"] == COMPENSATING:
        listed = ListedStatus.COMPENSATING
    step = None
    if listed.in_flight:
        step = row["running_step"]
    elif listed is ListedStatus.NEEDS_INTERVENTION:
        step = row["failed_compensation"] or row["failed_step"]
    return SagaRow(
        variant=VARIANT,
        saga_id=row["saga_id"],
        order_id=row["order_id"],
        status=listed,
        reason=row["reason"],
        step=step,
        started_at=float(row["started_at"]),
        ended_at=None if row["ended_at"] is None else float(row["ended_at"]),
        version=_version(row["placed"]),
    )


def _version(placed: str | None) -> str | None:
    """The version of the saga definition its first event names."""
    try:
        definition = json.loads(placed or "{}").get("definition") or {}
    except ValueError:
        return None
    version = definition.get("version")
    return version if isinstance(version, str) else None


def _action(action: OperatorAction) -> ActionView:
    return ActionView(
        action=action.action.value,
        who=action.who,
        at=action.at,
        note=action.note,
        result=action.result.value,
    )


def _decoded(msg: RawStreamMsg) -> dict[str, Any]:
    try:
        body = json.loads(msg.data or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _time(msg: RawStreamMsg) -> float:
    return msg.time.timestamp() if msg.time else 0.0


def _entry(msg: RawStreamMsg) -> RawEntry:
    """One stream message as a line: its event kind, and what it says of its step."""
    body = _decoded(msg)
    fields = [f"{key}={body[key]}" for key in ("step", "status", "reason") if body.get(key)]
    if body.get("attempts"):
        fields.append(f"attempt {body['attempts']}")
    if body.get("message"):
        fields.append(str(body["message"]))
    kind = str(body.get("kind") or (msg.subject or "").rsplit(".", 1)[0])
    return RawEntry(at=_time(msg), name=kind, detail=" ".join(fields))


_COMMANDS = (Role.RETRY_COMPENSATION, Role.RETRY_STEP)
"""An operator's commands on the stream: they start a round of a step, they report nothing."""


def _timeline(
    steps: Sequence[StepState], messages: Sequence[RawStreamMsg], routing: Routing
) -> list[StepView]:
    """The projection's steps with times from the stream, each earlier round of a retried
    step or compensation kept as a view of its own.

    A step's result event ends it. A forward step starts with its trigger (the event that
    sets it in flight: the previous step's result), however many events came between, such
    as the deadline's cancel while it hung; a compensation starts with the event just before
    its result (the failure, cancel or hand-back that asked for it). An operator's retry
    (round n) starts with the operator's command.
    """
    triggered: dict[tuple[str, int], float] = {}
    rounds: dict[str, dict[int, _Run]] = {}
    previous: float | None = None
    for msg in messages:
        at = _time(msg)
        body = _decoded(msg)
        kind = str(body.get("kind", ""))
        number = _int(body, "round")
        started = routing.starts(kind)
        if started is not None:
            triggered.setdefault((started, number), at)
        meaning = routing.meaning(kind)
        step = body.get("step")
        if isinstance(step, str) and meaning is not None and meaning.role in _COMMANDS:
            triggered.setdefault((step, number), at)
        elif isinstance(step, str):
            began = triggered.get((step, number), previous if previous is not None else at)
            run = _Run(began, at, _result(body, meaning), _int(body, "attempts"))
            rounds.setdefault(step, {})[number] = run
        previous = at
    views = []
    for s in steps:
        runs = rounds.get(s.step, {})
        asked = [n for (name, n) in triggered if name == s.step]
        latest = max([*runs, *asked], default=0)
        for number in sorted(runs):
            if number < latest:
                views.append(runs[number].view(s, number))
        start: float | None = runs[latest].start if latest in runs else None
        end: float | None = runs[latest].end if latest in runs else None
        if s.status is StepStatus.RUNNING:
            start, end = triggered.get((s.step, latest), previous), None
        views.append(
            StepView(
                step=str(s.step),
                phase=s.phase.value,
                status=s.status.value,
                attempts=s.attempts,
                started_at=start,
                ended_at=end,
                round=latest,
            )
        )
    return views


@dataclass(frozen=True)
class _Run:
    """One round of a step as the stream tells it."""

    start: float
    end: float
    status: str
    attempts: int

    def view(self, state: StepState, round: int) -> StepView:
        return StepView(
            step=str(state.step),
            phase=state.phase.value,
            status=self.status,
            attempts=self.attempts,
            started_at=self.start,
            ended_at=self.end,
            round=round,
        )


def _result(body: Mapping[str, Any], meaning: Meaning | None) -> str:
    if meaning is not None and meaning.role in (Role.FAILED, Role.COMPENSATION_FAILED):
        return StepStatus.FAILED.value
    return str(body.get("status") or StepStatus.DONE.value)


def _int(body: Mapping[str, Any], key: str) -> int:
    value = body.get(key)
    return value if isinstance(value, int) else 0
