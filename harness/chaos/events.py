"""Did every choreography event of a chaos run reach the stream once, and no more?

Per saga, one look at the SAGA stream's subjects for that saga: a subject stored more than
once is a duplicate that got past the broker's deduplication (each event kind is emitted once
per saga, under a fixed message id); a saga without its ``order.placed``, or a terminal saga
without the notice of its end, lost an event. The orchestration has no such stream: its
workflow history is the record, and a duplicated effect would show as a double charge.
"""

from __future__ import annotations

from nats.js import JetStreamContext

from choreography.broker import SAGA_STREAM
from choreography.front_door import COMPLETED, ENDED, PLACED
from harness.chaos.analysis import EventAudit
from harness.chaos.drive import VariantRun
from shared.contracts import SagaStatus


async def audit_stream(js: JetStreamContext, run: VariantRun) -> EventAudit:
    duplicates = lost = 0
    for saga in run.sagas:
        if saga.submitted_at is None:
            continue
        info = await js.stream_info(SAGA_STREAM, subjects_filter=f"*.*.*.{saga.saga_id}")
        subjects = info.state.subjects or {}
        duplicates += sum(count - 1 for count in subjects.values() if count > 1)
        wanted = [f"{PLACED}.{saga.saga_id}"]
        outcome = saga.outcome
        if outcome is not None and outcome.status.terminal:
            end = COMPLETED if outcome.status is SagaStatus.COMPLETED else ENDED
            wanted.append(f"{end}.{saga.saga_id}")
        lost += sum(1 for subject in wanted if subject not in subjects)
    return EventAudit(checked=True, duplicates=duplicates, lost=lost)


def not_audited() -> EventAudit:
    return EventAudit(
        checked=False,
        note="no event stream: the workflow history is the record; a duplicated effect "
        "would show as a double charge",
    )
