"""The pull consumer over nats-py's own ``fetch``: what each pull status comes to.

A fake JetStream answers the pull requests nats-py's real `PullSubscription` sends, as the
server would: messages, or a status message with the protocol's ``Status`` header. The
fake delivers to the subscription as nats-py's client does with a message read off the
socket (into its pending queue), so nats-py's own status handling runs unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext

from choreography.bus.pull import FetchPolicy, Puller

DELIVER = "_INBOX.pull"
SLOW = 5.0
"""A fetch timeout no test waits out unless it means to."""

Answer = Callable[["FakeJetStream", dict[str, Any]], None]
"""How the fake answers one pull request (the request's JSON as nats-py sent it)."""


class FakeJetStream:
    """The connection nats-py's pull subscription publishes its requests on, and the server
    behind it: each request is answered by the next scripted `Answer` (none: held)."""

    is_closed = False

    def __init__(self, *answers: Answer) -> None:
        self.answers: deque[Answer] = deque(answers)
        self.requests: list[dict[str, Any]] = []
        self.sub = Subscription(self, 1, DELIVER)
        self._sequence = 0

    async def publish(
        self, subject: str, payload: bytes = b"", reply: str = "", headers: Any = None
    ) -> None:
        assert subject == "$JS.API.CONSUMER.MSG.NEXT.SAGA.inventory" and reply == DELIVER
        request = json.loads(payload)
        self.requests.append(request)
        if self.answers:
            self.answers.popleft()(self, request)

    def send(self, *, pending: int = 0) -> Msg:
        """A saga event, with the count the server says still waits behind it."""
        self._sequence += 1
        n = self._sequence
        reply = f"$JS.ACK.SAGA.inventory.1.{n}.{n}.1700000000000000000.{pending}"
        return self._arrive(Msg(self, f"saga.order.placed.s-{n}", reply, b"{}", None))  # type: ignore[arg-type]

    def status(self, code: str, description: str) -> Msg:
        headers = {"Status": code, "Description": description}
        return self._arrive(Msg(self, DELIVER, "", b"", headers))  # type: ignore[arg-type]

    def _arrive(self, msg: Msg) -> Msg:
        self.sub._pending_queue.put_nowait(msg)  # what nats-py's client does on a MSG
        self.sub._pending_size += len(msg.data)
        return msg

    def subscription(self) -> JetStreamContext.PullSubscription:
        js = JetStreamContext(self)  # type: ignore[arg-type]
        return JetStreamContext.PullSubscription(
            js, self.sub, "SAGA", "inventory", DELIVER.encode()
        )


def messages(count: int = 1, *, pending: int = 0) -> Answer:
    """Answer with ``count`` messages, the last saying ``pending`` more wait."""

    def answer(server: FakeJetStream, request: dict[str, Any]) -> None:
        for left in range(count - 1, -1, -1):
            server.send(pending=pending + left)

    return answer


def status(code: str, description: str) -> Answer:
    """Answer with a status message (no messages, request timeout, conflict, ...)."""

    def answer(server: FakeJetStream, request: dict[str, Any]) -> None:
        server.status(code, description)

    return answer


def later(answer: Answer, delay_s: float) -> Answer:
    """Hold the request, then answer (a message published while the consumer waits)."""

    def held(server: FakeJetStream, request: dict[str, Any]) -> None:
        asyncio.get_running_loop().call_later(delay_s, answer, server, request)

    return held


def puller(
    server: FakeJetStream, timeout_s: float = SLOW, pause_s: float = SLOW, waiting_s: float = 0.2
) -> Puller:
    policy = FetchPolicy(timeout_s=timeout_s, waiting_timeout_s=waiting_s, pause_s=pause_s)
    return Puller(server.subscription(), "inventory", policy)


async def timed(puller: Puller, room: int = 128) -> tuple[list[Msg], float]:
    started = time.monotonic()
    taken = await puller.take(room)
    return taken, time.monotonic() - started


async def test_an_idle_consumer_asks_for_one_message_and_has_it_the_moment_it_comes() -> None:
    server = FakeJetStream(later(messages(1), 0.05))

    taken, took = await timed(puller(server))

    assert [m.subject for m in taken] == ["saga.order.placed.s-1"]
    assert server.requests[0]["batch"] == 1 and "no_wait" not in server.requests[0]
    assert took < SLOW


async def test_messages_waiting_behind_the_first_are_fetched_with_it_in_one_take() -> None:
    # A backlog built while the consumer was paused comes in one take: a cancel in it can
    # still overtake its saga's lane.
    server = FakeJetStream(messages(1, pending=2), messages(2))

    taken, _ = await timed(puller(server, waiting_s=SLOW))

    assert [m.subject.rsplit("-", 1)[1] for m in taken] == ["1", "2", "3"]
    assert [r["batch"] for r in server.requests] == [1, 2]


async def test_a_busy_consumer_asks_for_what_waits_up_to_its_room() -> None:
    server = FakeJetStream(messages(1, pending=500), messages(127, pending=373), messages(5))
    # nats-py hands over what a fetch collected by its timeout: under a CPU load, 127 messages
    # were not all collected within the short timeout of a fetch for what waits (120 came,
    # the other 7 with the next take). The batch sizes asked are what this test is about.
    consumer = puller(server, waiting_s=SLOW)

    first, _ = await timed(consumer, room=128)
    second, _ = await timed(consumer, room=5)

    assert (len(first), len(second)) == (128, 5)
    assert [r["batch"] for r in server.requests] == [1, 127, 5]


async def test_a_request_timeout_is_an_empty_fetch_asked_again_without_a_pause() -> None:
    server = FakeJetStream(later(status("408", "Request Timeout"), 0.1), messages(1))
    consumer = puller(server, timeout_s=0.3)  # pause_s: SLOW

    empty, took = await timed(consumer)
    resumed, _ = await timed(consumer)

    assert empty == [] and 0.3 <= took < SLOW
    assert len(resumed) == 1 and [r["batch"] for r in server.requests] == [1, 1]


@pytest.mark.parametrize(
    ("code", "description"), [("404", "No Messages"), ("408", "Requests Pending")]
)
async def test_messages_said_to_wait_but_gone_end_the_take_with_what_it_has(
    code: str, description: str
) -> None:
    # Another consumer of the durable took what waited: the fetch for it is answered 404 or
    # 408, nats-py lingers (here unanswered) for the short timeout of such a fetch.
    server = FakeJetStream(messages(1, pending=3), status(code, description))
    consumer = puller(server)

    taken, took = await timed(consumer)
    again = asyncio.create_task(consumer.take(128))
    while len(server.requests) < 4:
        await asyncio.sleep(0)
    again.cancel()

    assert len(taken) == 1 and took < SLOW
    assert [r["batch"] for r in server.requests] == [1, 3, 3, 1]  # then one at a time again


async def test_an_idle_heartbeat_is_ignored_and_the_message_after_it_is_handed_over() -> None:
    def heartbeat_then_message(server: FakeJetStream, request: dict[str, Any]) -> None:
        server.status("100", "Idle Heartbeat")
        later(messages(1), 0.05)(server, request)

    server = FakeJetStream(heartbeat_then_message)

    taken, _ = await timed(puller(server))

    assert [m.subject for m in taken] == ["saga.order.placed.s-1"]


async def test_a_conflict_ends_the_fetch_empty_after_a_pause_and_the_consumer_resumes() -> None:
    # 409 (consumer deleted, leadership change, exceeded limits): nats-py waits out the fetch's
    # timeout before ending it empty, so a conflict never spins the loop.
    server = FakeJetStream(status("409", "Leadership Change"), later(messages(1), 0.05))
    consumer = puller(server, timeout_s=0.3)

    empty, paused = await timed(consumer)
    resumed, _ = await timed(consumer)

    assert empty == [] and paused >= 0.3
    assert len(server.requests) == 2
    assert [m.subject for m in resumed] == ["saga.order.placed.s-1"]


@pytest.mark.parametrize(
    ("code", "description"),
    [("503", "No Responders"), ("400", "Bad Request - heartbeat value too large")],
)
async def test_a_refused_fetch_is_logged_and_asked_again_after_a_pause(
    code: str, description: str, caplog: pytest.LogCaptureFixture
) -> None:
    # 503: the durable is gone (a request to a deleted consumer); 400: a request the server
    # will not take. nats-py raises at once; the loop would spin without the pause.
    server = FakeJetStream(status(code, description), status(code, description), messages(1))
    consumer = puller(server, pause_s=0.2)

    with caplog.at_level(logging.DEBUG, logger="choreography.bus.pull"):
        first, paused = await timed(consumer)
        second, _ = await timed(consumer)
        resumed, _ = await timed(consumer)

    assert (first, second, len(resumed)) == ([], [], 1) and paused >= 0.2
    levels = [r.levelno for r in caplog.records if "refused" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]  # a streak is one warning
