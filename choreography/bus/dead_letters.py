"""Dead letters: a message no handler can take is copied to ``dlq.<service>.<subject>``, then
terminated so the broker stops redelivering it.

The ``SAGA_DLQ`` stream keeps the copies; the ``SAGA_ADVISORIES`` stream keeps the broker's
MSG_TERMINATED advisory of each ``term`` (choreography/broker.py).
"""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from choreography.bus.messages import MSG_ID_HEADER

REASON_LIMIT = 500
"""Characters of the reason kept in the ``Dlq-Reason`` header."""


def letter_headers(msg: Msg, reason: str) -> dict[str, str]:
    """The copy's headers: the original's, plus where it came from and why it was buried.

    The copy's ``Nats-Msg-Id`` names this consumer and stream sequence (the original id moves
    to ``Dlq-Msg-Id``): two consumers dead-lettering one message keep two letters, one
    consumer doing it twice (a crash before ``term``) keeps one.
    """
    meta = msg.metadata
    headers = dict(msg.headers or {})
    original_id = headers.pop(MSG_ID_HEADER, "")
    headers.update(
        {
            MSG_ID_HEADER: f"dlq:{meta.consumer}:{meta.sequence.stream}",
            "Dlq-Msg-Id": original_id,
            "Dlq-Reason": reason.replace("\n", " ")[:REASON_LIMIT] or "unknown",
            "Dlq-Subject": msg.subject,
            "Dlq-Stream-Seq": str(meta.sequence.stream),
            "Dlq-Consumer": meta.consumer or "",
            "Dlq-Delivered": str(meta.num_delivered),
        }
    )
    return headers


async def bury(js: JetStreamContext, msg: Msg, service: str, reason: str) -> None:
    """Copy the message, original headers included, to the dead-letter stream, then term it.

    The copy is acknowledged by the stream before the term: a crash between the two
    redelivers the message, and its second letter is deduplicated.
    """
    await js.publish(f"dlq.{service}.{msg.subject}", msg.data, headers=letter_headers(msg, reason))
    await msg.term()
