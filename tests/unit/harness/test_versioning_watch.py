"""When the versioning experiment stops watching its version-1 sagas (harness/versioning/
observe.py): once every saga ended, or once the open ones cannot move any more — which, while
the old release still runs (a rolling upgrade's window), only a dead letter proves."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import cast

from nats.js import JetStreamContext
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import (
    HistoryEvent,
    WorkflowTaskCompletedEventAttributes,
    WorkflowTaskFailedEventAttributes,
)

from choreography.broker import DLQ_STREAM, SAGA_STREAM
from harness.versioning import observe
from harness.versioning.observe import Watch, stuck_rule, until_settled

UNREACHED = 10_000
"""A poll count no watch below reaches unless it failed to end on its event."""
NONDETERMINISM_MESSAGE = "[TMPRL1100] Nondeterminism error: ModifyWorkflowPropertiesMachine"


@dataclass
class Sagas:
    """Two sagas: ``a`` completed, ``b`` open at its step until poll ``ends_at``."""

    ends_at: int = UNREACHED
    polls: int = 0

    async def poll(self) -> dict[str, str]:
        self.polls += 1
        b = "COMPLETED" if self.polls >= self.ends_at else "RUNNING:deduct_points"
        return {"a": "COMPLETED", "b": b}


@dataclass
class Causes:
    """What a look at the open sagas finds: ``cause`` for each, and how often it looked."""

    cause: str
    looks: list[list[str]] = field(default_factory=list)

    async def __call__(self, saga_ids: list[str]) -> dict[str, str]:
        self.looks.append(list(saga_ids))
        return dict.fromkeys(saga_ids, self.cause)


async def watch(sagas: Sagas, rule: observe.Settled, quiet_s: float = 600.0) -> str:
    return await until_settled(
        Watch(["a", "b"]),
        sagas.poll,
        quiet_s=quiet_s,
        bound_s=600.0,
        every_s=0.0,
        settled=rule,
        settle_every_s=0.0,
    )


async def test_a_watch_ends_once_the_open_sagas_are_stuck_for_good_without_waiting_out_quiet() -> (
    None
):
    sagas, causes = Sagas(), Causes(observe.NONDETERMINISM)

    ending = await watch(sagas, stuck_rule(causes, old_release_running=False))

    assert ending == observe.STUCK
    assert sagas.polls < UNREACHED
    assert len(causes.looks) >= 2  # said twice in a row before it is believed
    assert all(look == ["b"] for look in causes.looks)  # the ended saga is not looked at


async def test_during_a_rolling_window_a_saga_v2_code_failed_is_waited_for_until_v1_runs_it() -> (
    None
):
    sagas, causes = Sagas(ends_at=25), Causes(observe.NONDETERMINISM)

    ending = await watch(sagas, stuck_rule(causes, old_release_running=True))

    assert ending == observe.ENDED
    assert sagas.polls == 25  # the watch went on until the saga ended (a v1 worker ran it)
    assert causes.looks  # and the rule was asked on the way, and said no each time


async def test_during_a_rolling_window_a_dead_letter_ends_the_watch_once_nothing_is_in_flight() -> (
    None
):
    sagas, causes = Sagas(), Causes(observe.DEAD_LETTERED)
    looks = []

    async def in_flight() -> bool:
        looks.append(True)
        return len(looks) <= 5  # the dead letter's neighbours still being handled

    rule = stuck_rule(causes, old_release_running=True, in_flight=in_flight)
    ending = await watch(sagas, rule)

    assert ending == observe.STUCK
    assert len(looks) >= 7  # five looks with something in flight, then two clear ones
    assert len(causes.looks) >= 2


async def test_a_saga_whose_cause_is_not_for_good_is_waited_for_until_nothing_moved_for_quiet() -> (
    None
):
    sagas, causes = Sagas(), Causes(observe.WAITING)

    ending = await watch(sagas, stuck_rule(causes, old_release_running=False), quiet_s=0.05)

    assert ending == observe.QUIET
    assert causes.looks


def failed(message: str) -> HistoryEvent:
    failure = Failure(message=message)
    attributes = WorkflowTaskFailedEventAttributes(failure=failure)
    return HistoryEvent(workflow_task_failed_event_attributes=attributes)


def completed() -> HistoryEvent:
    attributes = WorkflowTaskCompletedEventAttributes()
    return HistoryEvent(workflow_task_completed_event_attributes=attributes)


def test_a_workflow_counts_as_failing_only_while_its_last_workflow_task_failed() -> None:
    failing = [completed(), failed(NONDETERMINISM_MESSAGE)]
    recovered = [failed(NONDETERMINISM_MESSAGE), completed()]

    assert observe.last_task_failure(failing) == NONDETERMINISM_MESSAGE
    assert observe.last_task_failure(recovered) is None
    assert observe.last_task_failure([]) is None
    assert observe.failure_cause(NONDETERMINISM_MESSAGE) == observe.NONDETERMINISM
    refusal = "made by saga definition orders-voucher v1 (x), but this process holds orders v1"
    assert observe.failure_cause(refusal) == observe.REFUSED
    assert observe.failure_cause("activity timed out") is None


@dataclass
class Broker:
    """A JetStream as `InFlight` reads it: durables' counts and the streams' last sequences."""

    durables: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Durable name: (pending, unacknowledged)."""
    last: dict[str, int] = field(default_factory=lambda: {SAGA_STREAM: 10, DLQ_STREAM: 1})

    async def consumers_info(self, stream: str) -> list[SimpleNamespace]:
        assert stream == SAGA_STREAM
        return [
            SimpleNamespace(
                num_pending=pending,
                num_ack_pending=unacked,
                config=SimpleNamespace(durable_name=name),
            )
            for name, (pending, unacked) in self.durables.items()
        ]

    async def stream_info(self, stream: str) -> SimpleNamespace:
        return SimpleNamespace(state=SimpleNamespace(last_seq=self.last[stream]))


async def test_in_flight_until_no_durable_read_holds_a_message_and_nothing_was_published() -> None:
    broker = Broker(durables={"payment": (0, 1), "payment-r2": (0, 0)})
    looks = observe.InFlight(cast(JetStreamContext, broker), None)

    assert await looks()  # the first look has nothing to compare with
    assert await looks()  # a message unacknowledged (a handler runs)
    broker.durables["payment"] = (0, 0)
    assert not await looks()
    broker.last[SAGA_STREAM] += 1  # an outbox published meanwhile
    assert await looks()
    broker.last[DLQ_STREAM] += 1  # a dead letter written meanwhile
    assert await looks()
    assert not await looks()


async def test_a_group_nobody_reads_holding_messages_is_not_in_flight() -> None:
    broker = Broker(durables={"points": (3, 0), "points-r2": (0, 0)})
    looks = observe.InFlight(cast(JetStreamContext, broker), lambda d: not d.endswith("-r2"))

    await looks()

    assert not await looks()
    broker.durables["points-r2"] = (1, 0)
    assert await looks()
