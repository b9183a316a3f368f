"""Watching a set of sagas across an upgrade: which ended, which are stuck, and why.

Statuses are read the cheap way, all at once per poll: the choreography's from the tracker's
table in the orders store, the orchestration's from Temporal's visibility (the ``SagaStatus``
search attribute the workflow upserts). A saga that is not terminal when the run stops is
*stuck*, and its cause is looked up once: for a workflow, the last failed workflow task in
its history (a non-determinism error, or a worker refusing its definition) or no worker of
its version; for the choreography, its events in the dead-letter stream, else in a consumer
group no process reads any more.

A watch ends when every saga ended; or when the open ones cannot move any more — each stuck
on a cause no running process undoes, with nothing of theirs in flight (`stuck_rule`); or,
as the upper bound for sagas whose cause it cannot name, when nothing changed for a while.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus

from choreography.broker import DLQ_STREAM, SAGA_STREAM
from choreography.events import ROOT
from choreography.tracker import table
from orchestration.visibility import SAGA_STATUS
from shared.contracts import SagaStatus
from shared.store import Store

TERMINAL = frozenset(
    {SagaStatus.COMPLETED.value, SagaStatus.COMPENSATED.value, SagaStatus.NEEDS_INTERVENTION.value}
)
NONDETERMINISM = "non-determinism error"
REFUSED = "refused for its definition"
NO_WORKER = "no worker of its version"
DEAD_LETTERED = "events dead-lettered"
UNREAD = "events in a consumer group nobody reads"
WAITING = "waiting"

STUCK_FOR_GOOD = frozenset({NONDETERMINISM, REFUSED, NO_WORKER, DEAD_LETTERED, UNREAD})
"""Causes no process of the new release undoes: once the old release stopped, a saga stuck on
one of them waits for an operator (docs/versioning.md, *What an operator does*)."""
STUCK_WHILE_OLD_RUNS = frozenset({DEAD_LETTERED})
"""While the old release still runs (a rolling upgrade's window) only a dead letter is for
good: a v1 worker may still take a workflow task that v2's code failed or refused, a pinned
saga's version still has workers, and the old consumer group is still read."""

ENDED = "every saga ended"
STUCK = "the open sagas cannot move"
QUIET = "nothing moved"
BOUND = "bound"
SETTLE_EVERY_S = 0.5

Poll = Callable[[], Awaitable[dict[str, str]]]
Causes = Callable[[list[str]], Awaitable[dict[str, str]]]
Settled = Callable[[list[str]], Awaitable[bool]]
"""Whether these open sagas cannot move any more (`stuck_rule`)."""


@dataclass
class Watch:
    """When each saga was first seen terminal; the last time anything changed."""

    saga_ids: list[str]
    ended_at: dict[str, float] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)
    changed_at: float = field(default_factory=time.time)
    ended_by: list[str] = field(default_factory=list)
    """How each watch of these sagas ended (`ENDED`, `STUCK`, `QUIET`, `BOUND`), in order."""

    def note(self, statuses: dict[str, str]) -> None:
        now = time.time()
        for saga_id, status in statuses.items():
            if self.seen.get(saga_id) != status:
                self.seen[saga_id] = status
                self.changed_at = now
            if status in TERMINAL and saga_id not in self.ended_at:
                self.ended_at[saga_id] = now

    @property
    def open(self) -> list[str]:
        return [s for s in self.saga_ids if s not in self.ended_at]


async def choreography_statuses(orders: Store, saga_ids: list[str]) -> dict[str, str]:
    """Status (and the step in flight, so progress counts as a change) from the tracker."""
    found: dict[str, str] = {}
    for row in await table.rows_of(orders, "saga_id, status, running_step", saga_ids):
        status = str(row["status"])
        found[str(row["saga_id"])] = (
            status if status in TERMINAL else f"{status}:{row['running_step']}"
        )
    return found


async def orchestration_statuses(client: Client, task_queue: str) -> dict[str, str]:
    """Every workflow of the queue: its ``SagaStatus`` (and step, while it runs)."""
    found: dict[str, str] = {}
    async for execution in client.list_workflows(f'TaskQueue = "{task_queue}"'):
        status = execution.typed_search_attributes.get(SAGA_STATUS) or "RUNNING"
        if status not in TERMINAL:
            step = execution.search_attributes.get("SagaStep") or [""]
            status = f"{status}:{step[0]}"
        found[execution.id] = status
    return found


async def until_settled(
    watch: Watch,
    poll: Poll,
    *,
    quiet_s: float,
    bound_s: float,
    every_s: float = 0.5,
    settled: Settled | None = None,
    settle_every_s: float = SETTLE_EVERY_S,
) -> str:
    """Poll until every saga ended (`ENDED`); or ``settled`` said twice in a row, at least
    ``settle_every_s`` apart and with no saga changing in between, that the open ones cannot
    move (`STUCK`); or nothing changed for ``quiet_s`` (`QUIET`); or ``bound_s`` (`BOUND`).
    ``quiet_s`` and ``bound_s`` are upper bounds, for sagas ``settled`` cannot vouch for."""
    deadline = time.monotonic() + bound_s
    said_at: float | None = None  # when `settled` last said yes (None: it said no)
    next_look = 0.0
    ending = BOUND
    while time.monotonic() < deadline:
        watch.note(await poll())
        if not watch.open:
            ending = ENDED
            break
        now = time.time()
        still = now - watch.changed_at
        if settled is not None and still >= settle_every_s and time.monotonic() >= next_look:
            next_look = time.monotonic() + settle_every_s
            if not await settled(watch.open):
                said_at = None
            elif said_at is not None and watch.changed_at < said_at:
                ending = STUCK
                break
            else:
                said_at = time.time()
        if still > quiet_s:
            ending = QUIET
            break
        await asyncio.sleep(every_s)
    else:
        if not watch.open:
            ending = ENDED
    watch.ended_by.append(ending)
    return ending


def stuck_rule(
    causes: Causes,
    *,
    old_release_running: bool,
    in_flight: Callable[[], Awaitable[bool]] | None = None,
) -> Settled:
    """`Settled` from what is known of each open saga: none has anything ``in_flight``, and
    ``causes`` names for each a cause that is for good (`STUCK_FOR_GOOD`, or only
    `STUCK_WHILE_OLD_RUNS` while the old release still runs)."""
    allowed = STUCK_WHILE_OLD_RUNS if old_release_running else STUCK_FOR_GOOD

    async def settled(open_ids: list[str]) -> bool:
        if in_flight is not None and await in_flight():
            return False
        found = await causes(open_ids)
        return all(found.get(saga_id) in allowed for saga_id in open_ids)

    return settled


def last_task_failure(events: Iterable[HistoryEvent]) -> str | None:
    """The failure of a workflow's last workflow task, if that task failed (None: it
    completed, or none ran). A failing task's retries are not written to the history."""
    failure: str | None = None
    for event in events:
        if event.HasField("workflow_task_failed_event_attributes"):
            failure = event.workflow_task_failed_event_attributes.failure.message
        elif event.HasField("workflow_task_completed_event_attributes"):
            failure = None
    return failure


def failure_cause(message: str) -> str | None:
    """The stuck cause a workflow task's failure names, if any."""
    if "TMPRL1100" in message:
        return NONDETERMINISM
    if "made by saga definition" in message:
        return REFUSED
    return None


async def workflow_causes(client: Client, saga_ids: list[str], gone: str | None) -> dict[str, str]:
    """For each workflow (up to the first that may still move), the cause that holds it for
    good once the old release stopped: its last workflow task failed on a non-determinism
    error or a refusal of its definition (every worker left runs the same code) and none of
    its activities is pending; or it waits for a task, pinned to version ``gone``, whose
    workers are gone. Else `WAITING` (and the look ends there: the rule needs all)."""
    found: dict[str, str] = {}
    for saga_id in saga_ids:
        found[saga_id] = await _workflow_cause(client, saga_id, gone)
        if found[saga_id] == WAITING:
            break
    return found


async def _workflow_cause(client: Client, saga_id: str, gone: str | None) -> str:
    handle = client.get_workflow_handle(saga_id)
    description = await handle.describe()
    if description.status is not WorkflowExecutionStatus.RUNNING:
        return WAITING  # closed meanwhile: the next poll sees it end
    raw = description.raw_description
    version = raw.workflow_execution_info.versioning_info.deployment_version.build_id
    if gone is not None and version == gone and raw.pending_workflow_task:
        return NO_WORKER
    history = await handle.fetch_history()
    failure = last_task_failure(history.events)
    cause = failure_cause(failure) if failure is not None else None
    if cause is not None and not raw.pending_activities:
        return cause
    return WAITING


async def workflow_stuck_reason(client: Client, saga_id: str) -> str:
    """Why a workflow does not move: its last failed workflow task, else no worker of its
    version (pinned to one that no longer runs), else waiting."""
    handle = client.get_workflow_handle(saga_id)
    history = await handle.fetch_history()
    failure = ""
    for event in history.events:
        if event.HasField("workflow_task_failed_event_attributes"):
            failure = event.workflow_task_failed_event_attributes.failure.message
    cause = failure_cause(failure)
    if cause is not None:
        return cause
    description = await handle.describe()
    info = description.raw_description.workflow_execution_info.versioning_info
    if info.deployment_version.build_id and description.raw_description.pending_workflow_task:
        return NO_WORKER
    return WAITING


async def unread_group_holding(
    js: JetStreamContext, group: Callable[[str], bool], saga_id: str
) -> str | None:
    """A durable of one consumer group (names ``group`` holds true for) that nobody reads (messages
    pending or unacknowledged, no pull request waiting) and that has not acknowledged one of
    this saga's events (past its ack floor, on a subject it filters): the saga waits on it."""
    idle = [
        info
        for info in await js.consumers_info(SAGA_STREAM)
        if group(info.config.durable_name or "")
        and (info.num_pending or 0) + (info.num_ack_pending or 0)
        and not info.num_waiting
    ]
    if not idle:
        return None
    stream = await js.stream_info(SAGA_STREAM, subjects_filter=f"{ROOT}.*.*.{saga_id}")
    for subject in stream.state.subjects or {}:
        last = await js.get_last_msg(SAGA_STREAM, subject)
        for info in idle:
            floor = info.ack_floor.stream_seq if info.ack_floor else 0
            filters = info.config.filter_subjects or [info.config.filter_subject or ">"]
            if (last.seq or 0) > (floor or 0) and any(_matches(f, subject) for f in filters):
                return info.config.durable_name
    return None


async def choreography_causes(
    js: JetStreamContext, saga_ids: list[str], unread: Callable[[str], bool] | None
) -> dict[str, str]:
    """For each saga (up to the first that may still move): `DEAD_LETTERED` when one of its
    events is in the dead-letter stream; `UNREAD` when a durable of a group nobody reads
    (``unread``'s names, None: every group is read) holds one; else `WAITING`."""
    letters = await dead_letters(js, saga_ids)
    found: dict[str, str] = {}
    for saga_id in saga_ids:
        if letters.get(saga_id):
            found[saga_id] = DEAD_LETTERED
        elif unread is not None and await unread_group_holding(js, unread, saga_id):
            found[saga_id] = UNREAD
        else:
            found[saga_id] = WAITING
            break
    return found


class InFlight:
    """Whether anything may still move on the broker: a durable some process reads (any
    whose name ``unread`` does not hold true for) holds a message pending or unacknowledged,
    or a message was published to the saga or dead-letter stream since the previous look (an
    outbox's event sits between its commit and its publish). The first look says yes."""

    def __init__(self, js: JetStreamContext, unread: Callable[[str], bool] | None) -> None:
        self.js = js
        self.unread = unread or (lambda durable: False)
        self.last: tuple[int, int] | None = None

    async def __call__(self) -> bool:
        busy = any(
            (info.num_pending or 0) + (info.num_ack_pending or 0)
            for info in await self.js.consumers_info(SAGA_STREAM)
            if not self.unread(info.config.durable_name or "")
        )
        mark = (await _last_seq(self.js, SAGA_STREAM), await _last_seq(self.js, DLQ_STREAM))
        published, self.last = mark != self.last, mark
        return busy or published


async def _last_seq(js: JetStreamContext, stream: str) -> int:
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return 0
    return int(info.state.last_seq or 0)


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` one or more."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(wanted)


async def dead_letters(js: JetStreamContext, saga_ids: Iterable[str]) -> Counter[str]:
    """Dead letters per saga (the stream's subjects end with the saga id)."""
    wanted = set(saga_ids)
    try:
        info = await js.stream_info(DLQ_STREAM, subjects_filter="dlq.>")
    except NotFoundError:
        return Counter()
    found: Counter[str] = Counter()
    for subject, count in (info.state.subjects or {}).items():
        saga_id = subject.rsplit(".", 1)[-1]
        if saga_id in wanted:
            found[saga_id] += count
    return found


async def dead_letter_reasons(js: JetStreamContext, saga_ids: Iterable[str]) -> Counter[str]:
    """The reasons of the last dead letter of each subject of these sagas (first words)."""
    wanted = set(saga_ids)
    reasons: Counter[str] = Counter()
    try:
        info = await js.stream_info(DLQ_STREAM, subjects_filter="dlq.>")
    except NotFoundError:
        return reasons
    for subject in info.state.subjects or {}:
        if subject.rsplit(".", 1)[-1] not in wanted:
            continue
        message = await js.get_last_msg(DLQ_STREAM, subject)
        reason = (message.headers or {}).get("Dlq-Reason", "unknown")
        reasons[_gist(reason)] += 1
    return reasons


def _gist(reason: str) -> str:
    """A dead letter's reason without the saga's own subject and ids, so reasons group."""
    _, _, rest = reason.partition(": ")
    text = rest or reason
    return text.split(" (")[0] if "saga definition" in text else text[:120]
