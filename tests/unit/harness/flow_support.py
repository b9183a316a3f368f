"""Hand-made saga traces shaped like the real ones: a choreography's chain of events, a workflow's
activity calls, each step span inside the span of what triggered it."""

from __future__ import annotations

from pathlib import Path

from harness.report.traces import SagaTrace, load_traces
from tests.unit.harness.trace_support import TraceBuilder, root, step, write

Hop = tuple[str, str, str, str]
"""(event kind, consuming service, step run, its outcome)."""

HAPPY: list[Hop] = [
    ("order.placed", "inventory", "reserve_inventory", "done"),
    ("inventory.reserved", "payment", "charge_payment", "done"),
    ("payment.charged", "points", "deduct_points", "done"),
    ("points.deducted", "shipping", "create_shipment", "done"),
    ("shipping.created", "orders", "complete_order", "done"),
]


def choreography_trace(
    tmp_path: Path,
    hops: list[Hop],
    outcome: str = "COMPLETED",
    reason: str | None = None,
    *,
    older: bool = False,
) -> SagaTrace:
    """One saga whose events go hop by hop, each step span inside its event's ``process``,
    under the event's ``send`` span (``older``: a ``create`` span with the ``send`` under it,
    the shape of files written before the two were one)."""
    trace = TraceBuilder()
    extra = {"saga.outcome": outcome, **({"saga.reason": reason} if reason else {})}
    parent = root(trace, "choreography", "o-1", 10 * len(hops) + 10, extra)
    at = 1.0
    for kind, consumer, name, result in hops:
        subject = {"messaging.destination.name": f"saga.{kind}.o-1-t"}
        name_of = f"saga.{kind}.{{saga_id}}"
        sender = trace.span(
            f"{'create' if older else 'send'} {name_of}",
            at,
            at + 1,
            parent=parent,
            kind=4,
            attrs=subject,
        )
        if older:
            trace.span(f"send {name_of}", at + 0.5, at + 1, parent=sender, kind=4, attrs=subject)
        process = trace.span(
            f"process {name_of}",
            at + 1,
            at + 8,
            parent=sender,
            kind=5,
            attrs={**subject, "messaging.consumer.group.name": consumer},
        )
        phase = "compensate" if name in COMPENSATIONS else "forward"
        parent = step(
            trace, name, at + 2, at + 7, process, {"saga.outcome": result, "saga.phase": phase}
        )
        at += 10
    return only(tmp_path, trace)


def orchestration_trace(
    tmp_path: Path, calls: list[tuple[str, str]], outcome: str = "COMPLETED", late_ms: float = 0.0
) -> SagaTrace:
    """One saga whose workflow calls each step as an activity: (step, outcome) in order; the
    last attempt may run ``late_ms`` past the outcome."""
    trace = TraceBuilder()
    end = 10 * len(calls) + 10
    parent = root(trace, "orchestration", "o-1", end, {"saga.outcome": outcome})
    start = trace.span("StartUpdateWithStartWorkflow:OrderSaga", 0.5, 2, parent=parent, kind=3)
    workflow = trace.span("RunWorkflow:OrderSaga", 1, 2, parent=start)
    at = 3.0
    for index, (name, result) in enumerate(calls):
        late = late_ms if index == len(calls) - 1 else 0.0
        scheduled = trace.span(f"StartActivity:{name}", at, at + 0.5, parent=workflow, kind=3)
        run = trace.span(f"RunActivity:{name}", at + 1, at + 6 + late, parent=scheduled, kind=2)
        phase = "compensate" if name in COMPENSATIONS else "forward"
        extra = {"saga.outcome": result, "saga.phase": phase, "saga.variant": "orchestration"}
        step(trace, name, at + 2, at + 5 + late, run, extra)
        at += 10
    return only(tmp_path, trace)


COMPENSATIONS = ("release_inventory", "refund_payment", "restore_points", "cancel_shipment")


def only(tmp_path: Path, trace: TraceBuilder) -> SagaTrace:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write(tmp_path / f"{trace.trace_id[:6]}-{len(trace.spans)}.jsonl", trace)
    (saga,) = load_traces(path)
    return saga
