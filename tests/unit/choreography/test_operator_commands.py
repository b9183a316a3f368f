"""The orders process's desk for operator commands: what it answers, what it refuses to read."""

from __future__ import annotations

import time
from typing import Any

import pytest

from choreography.bus import Delivery, Poison
from choreography.operator import Answer, OperatorCommand, OperatorDesk, outgoing, subject
from choreography.tracker import DuplicateCommand
from shared.contracts import Action, ActionResult, OperatorAction
from shared.runtime import NotAwaitingOperator, UnknownSaga


class FakeTracker:
    """Answers as the tracker would, and remembers what it was asked."""

    def __init__(self, outcome: OperatorAction | Exception) -> None:
        self.outcome = outcome
        self.calls: list[tuple[Any, ...]] = []

    async def retry_compensation(self, saga_id: str, who: str, *, command: str) -> OperatorAction:
        self.calls.append(("retry", saga_id, who, command))
        return self._answer()

    async def retry_step(self, saga_id: str, who: str, *, command: str) -> OperatorAction:
        self.calls.append(("retry_step", saga_id, who, command))
        return self._answer()

    async def resolve(self, saga_id: str, who: str, note: str, *, command: str) -> OperatorAction:
        self.calls.append(("resolve", saga_id, who, note, command))
        return self._answer()

    def _answer(self) -> OperatorAction:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


def command(action: Action = Action.RETRY_COMPENSATION, **changes: Any) -> OperatorCommand:
    fields: dict[str, Any] = {
        "command_id": "c-1",
        "action": action,
        "saga_id": "s-1",
        "who": "ann",
        "note": "by hand" if action is Action.RESOLVE else "",
        "at": time.time(),
        "reply_to": "_INBOX.x",
        **changes,
    }
    return OperatorCommand(**fields)


def delivered(sent: OperatorCommand, subject_: str | None = None) -> Delivery:
    message = outgoing(sent)
    return Delivery(subject_ or message.subject, message.body, dict(message.headers), 1, 7)


async def handled(tracker: FakeTracker, sent: OperatorCommand) -> list[tuple[str, Answer]]:
    replies: list[tuple[str, Answer]] = []

    async def reply(to: str, body: bytes) -> None:
        replies.append((to, Answer.model_validate_json(body)))

    await OperatorDesk(tracker, reply).handle(delivered(sent))  # type: ignore[arg-type]
    return replies


def test_a_command_s_subject_names_the_action_and_the_saga() -> None:
    assert subject(Action.RETRY_COMPENSATION, "s-1") == "operator.retry_requested.s-1"
    assert subject(Action.RESOLVE, "s-1") == "operator.resolve_requested.s-1"
    assert subject(Action.RETRY_STEP, "s-1") == "operator.retry_step_requested.s-1"
    assert outgoing(command()).msg_id == "c-1"


async def test_the_desk_performs_a_retry_with_the_command_id_and_answers_the_action() -> None:
    pending = OperatorAction(action=Action.RETRY_COMPENSATION, who="ann", at=1.0, round=1)
    tracker = FakeTracker(pending)

    replies = await handled(tracker, command())

    assert tracker.calls == [("retry", "s-1", "ann", "c-1")]
    assert replies == [("_INBOX.x", Answer(action=pending))]


async def test_the_desk_performs_a_retry_of_the_step_past_the_pivot() -> None:
    pending = OperatorAction(action=Action.RETRY_STEP, who="ann", at=1.0, round=1)
    tracker = FakeTracker(pending)

    replies = await handled(tracker, command(Action.RETRY_STEP))

    assert tracker.calls == [("retry_step", "s-1", "ann", "c-1")]
    assert replies == [("_INBOX.x", Answer(action=pending))]


async def test_the_desk_passes_the_note_of_a_resolve() -> None:
    done = OperatorAction(
        action=Action.RESOLVE, who="ann", at=1.0, note="by hand", result=ActionResult.RESOLVED
    )
    tracker = FakeTracker(done)

    replies = await handled(tracker, command(Action.RESOLVE))

    assert tracker.calls == [("resolve", "s-1", "ann", "by hand", "c-1")]
    assert replies[0][1].action == done


async def test_a_refusal_and_a_duplicate_are_answered_an_unknown_saga_is_not() -> None:
    refused = await handled(FakeTracker(NotAwaitingOperator("s-1", "COMPLETED")), command())
    duplicate = await handled(FakeTracker(DuplicateCommand("c-1")), command())
    unknown = await handled(FakeTracker(UnknownSaga("s-1")), command())

    assert refused[0][1].refused == "saga s-1 does not wait for an operator (it is COMPLETED)"
    assert duplicate[0][1].duplicate
    assert unknown == []  # another deployment's saga: its own desk answers


async def test_nobody_is_answered_without_a_reply_subject() -> None:
    tracker = FakeTracker(NotAwaitingOperator("s-1", "COMPLETED"))
    assert await handled(tracker, command(reply_to=None)) == []


@pytest.mark.parametrize(
    "bad",
    [
        delivered(command(), "operator.resolve_requested.s-1"),  # another action's subject
        delivered(command(), "operator.retry_requested.s-2"),  # another saga's subject
        Delivery("operator.retry_requested.s-1", b"{not json", {}, 1, 7),
        Delivery("operator.retry_requested.s-1", b'{"command_id": "c"}', {}, 1, 7),
        Delivery(
            "operator.retry_requested.s-1",
            command().model_dump_json().replace("_INBOX.x", "saga.order.completed.s-9").encode(),
            {},
            1,
            7,
        ),
    ],
)
async def test_a_command_that_does_not_read_is_poison(bad: Delivery) -> None:
    tracker = FakeTracker(NotAwaitingOperator("s-1", "COMPLETED"))

    async def reply(to: str, body: bytes) -> None:
        raise AssertionError("nothing is answered")

    with pytest.raises(Poison):
        await OperatorDesk(tracker, reply).handle(bad)  # type: ignore[arg-type]
    assert tracker.calls == []
