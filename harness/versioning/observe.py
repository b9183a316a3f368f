"""Watching a set of sagas across an upgrade: which ended, which are stuck, and why.

Statuses are read the cheap way, all at once per poll: the choreography's from the tracker's
table in the orders store, the orchestration's from Temporal's visibility (the ``SagaStatus``
search attribute the workflow upserts). A saga that is not terminal when the run stops is
*stuck*, and its cause is looked up once: for a workflow, the last failed workflow task in
its history (a non-determinism error, or a worker refusing its definition) or no worker of
its version; for the choreography, its events in the dead-letter stream, else in a consumer
group no process reads any more.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from temporalio.client import Client

from choreography.broker import DLQ_STREAM, SAGA_STREAM
from choreography.events import ROOT
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
CHUNK = 400


@dataclass
class Watch:
    """When each saga was first seen terminal; the last time anything changed."""

    saga_ids: list[str]
    ended_at: dict[str, float] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)
    changed_at: float = field(default_factory=time.time)

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
    for start in range(0, len(saga_ids), CHUNK):
        chunk = saga_ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        rows = await orders.query(
            f"SELECT saga_id, status, running_step FROM sagas WHERE saga_id IN ({marks})", chunk
        )
        for row in rows:
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
    poll: object,
    *,
    quiet_s: float,
    bound_s: float,
    every_s: float = 0.5,
) -> None:
    """Poll until every saga ended, or nothing changed for ``quiet_s``, or ``bound_s``."""
    assert callable(poll)
    deadline = time.monotonic() + bound_s
    while watch.open and time.monotonic() < deadline:
        watch.note(await poll())
        if watch.open and time.time() - watch.changed_at > quiet_s:
            return
        await asyncio.sleep(every_s)


async def workflow_stuck_reason(client: Client, saga_id: str) -> str:
    """Why a workflow does not move: its last failed workflow task, else no worker of its
    version (pinned to one that no longer runs), else waiting."""
    handle = client.get_workflow_handle(saga_id)
    history = await handle.fetch_history()
    failure = ""
    for event in history.events:
        if event.HasField("workflow_task_failed_event_attributes"):
            failure = event.workflow_task_failed_event_attributes.failure.message
    if "TMPRL1100" in failure:
        return NONDETERMINISM
    if "made by saga definition" in failure:
        return REFUSED
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
