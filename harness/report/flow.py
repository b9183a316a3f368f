"""What a saga's trace shows happened, read the same way for both styles.

A trace becomes a `SagaFlow`: every step attempt (its step, phase, attempt, outcome, the
faults injected into it, and what triggered it), every message delivered or activity run (from
which lane to which, labelled with the event kind or the activity's name), and the moments
that matter: the cancel, the deadline, the outcome. The trace diagrams, the drift check and
the trace diff are all read off a flow.

Triggers: in the choreography a step runs inside the ``process <subject>`` span of the event
that started it, whose parent is the producer's ``send`` span (a ``create`` span in trace files
written before the two were one); in the orchestration it runs inside ``RunActivity:<step>``,
scheduled by the workflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.report.lanes import HARNESS, OTHER, WORKFLOW, lane_of
from harness.report.trace_file import Span
from harness.report.traces import SagaTrace, is_step
from shared.faults import FAULT_EVENT
from shared.telemetry import SAGA_ATTEMPT, SAGA_OUTCOME, SAGA_PHASE, SAGA_STEP

DESTINATION = "messaging.destination.name"
CONSUMER_GROUP = "messaging.consumer.group.name"
FRONT = "front."
PRODUCED = ("send ", "create ")
"""A message's producer span under the step that wrote it: ``send``; in older files ``create``
(its ``send`` was the create span's child, so no message is counted twice)."""
ORDERS = "orders"
ERROR = 2
Clock = Callable[[int], float]
"""Nanoseconds since the epoch to milliseconds since the saga started."""


@dataclass(frozen=True)
class Edge:
    """A message from one lane to another: an event kind, or the activity the workflow called."""

    src: str
    dst: str
    label: str

    def __str__(self) -> str:
        return f"{self.src} -> {self.dst}: {self.label}"


@dataclass(frozen=True)
class Attempt:
    """One run of a step (forward or compensation) in its service."""

    step: str
    phase: str
    attempt: int
    outcome: str
    """``done``, ``failed``, ``rejected``, ``noop``, ``skipped``, ``error`` (a transient
    failure, retried), ``cancelled`` (abandoned in flight) or ``hung`` (never answered)."""
    service: str
    start_ms: float
    end_ms: float
    trigger: Edge | None
    faults: tuple[str, ...] = ()

    @property
    def duration_ms(self) -> float:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class Delivery:
    """A message handled (a consumer's ``process``) or an activity task run (``RunActivity``)."""

    edge: Edge
    start_ms: float
    end_ms: float
    acted: str | None
    """The step it ran, if any; a delivery that ran none was skipped, fenced, ignored (not
    addressed to that service) or answered by the inbox (a duplicate)."""
    produced: tuple[str, ...] = ()
    """The event kinds it sent (a skip answers ``skipped``; a fence may answer ``refused``)."""
    about: str | None = None
    """The step the receiving service reacts for (its ``saga.step``), acted on or not."""


@dataclass(frozen=True)
class Marker:
    """A moment worth a line on a chart: ``cancel``, ``deadline``, ``fault`` or ``outcome``."""

    kind: str
    at_ms: float
    label: str
    lane: str = ""


@dataclass(frozen=True)
class SagaFlow:
    variant: str
    outcome_ms: float
    quiet_ms: float
    attempts: tuple[Attempt, ...]
    deliveries: tuple[Delivery, ...]
    calls: tuple[Delivery, ...]
    """The harness's calls to the saga: the place and cancel commands, the workflow's start,
    signals and updates (queries, which only read, are left out)."""
    markers: tuple[Marker, ...]
    notices: tuple[Delivery, ...] = ()
    """The end notice sent back to the harness (``order.completed``, ``front.saga.ended``)."""

    @property
    def has_steps(self) -> bool:
        return bool(self.attempts)


def flow_of(saga: SagaTrace, deadline_ms: float | None = None) -> SagaFlow:
    """The saga's flow; ``deadline_ms`` (the scenario's deadline) marks a timed-out saga whose
    deadline left no span of its own (the workflow's timer)."""
    zero = saga.root.start_ns
    by_id = {s.span_id: s for s in saga.spans}

    def ms(ns: int) -> float:
        return (ns - zero) / 1e6

    attempts = tuple(
        sorted(
            (_attempt(s, by_id, ms) for s in saga.spans if is_step(s)),
            key=lambda a: (a.start_ms, a.step),
        )
    )
    deliveries = tuple(
        sorted(_deliveries(saga, by_id, ms, attempts), key=lambda d: (d.start_ms, d.edge.dst))
    )
    markers = _markers(saga, ms, attempts, deadline_ms)
    return SagaFlow(
        variant=saga.variant,
        outcome_ms=saga.root.duration_ms,
        quiet_ms=ms(saga.last_end_ns),
        attempts=attempts,
        deliveries=tuple(d for d in deliveries if d.edge.src != HARNESS),
        calls=tuple(_calls(saga, ms)) + tuple(d for d in deliveries if d.edge.src == HARNESS),
        markers=markers,
        notices=tuple(_notices(saga, ms)),
    )


def participant(span: Span) -> str:
    """The lane a span is drawn in, with the front door's desk in the orders service."""
    if span.attributes.get(CONSUMER_GROUP) == f"{ORDERS}-front":
        return ORDERS
    return lane_of(span)


def kind_of(destination: str) -> str:
    """``inventory.reserved`` for ``saga.inventory.reserved.<saga id>``; ``front.order.place``
    for the front door's subjects."""
    stem = destination.rsplit(".", 1)[0] if destination.count(".") >= 2 else destination
    return stem.removeprefix("saga.")


def _attempt(span: Span, by_id: dict[str, Span], ms: Clock) -> Attempt:
    to_ms = ms
    faults = tuple(
        str(kind)
        for event in span.events
        if event["name"] == FAULT_EVENT
        for kind in _kinds(event["attributes"].get("fault.kinds"))
    )
    outcome = str(span.attributes.get(SAGA_OUTCOME, ""))
    if not outcome:  # a file from before attempts cut off in flight were marked cancelled
        outcome = "hung" if "hang" in faults else ("failed" if span.status == ERROR else "done")
    return Attempt(
        step=str(span.attributes[SAGA_STEP]),
        phase=str(span.attributes.get(SAGA_PHASE, "forward")),
        attempt=int(span.attributes.get(SAGA_ATTEMPT, 1)),
        outcome=outcome,
        service=participant(span),
        start_ms=to_ms(span.start_ns),
        end_ms=to_ms(span.end_ns),
        trigger=_trigger(span, by_id),
        faults=faults,
    )


def _kinds(value: object) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)] if value else []


def _trigger(span: Span, by_id: dict[str, Span]) -> Edge | None:
    """What started the step: the event delivered to its service, or the workflow's call."""
    parent = by_id.get(span.parent_span_id or "")
    while parent is not None:
        if parent.name.startswith("process "):
            return _delivery_edge(parent, by_id)
        if parent.name.startswith("RunActivity:"):
            return Edge(WORKFLOW, participant(span), parent.name.partition(":")[2])
        parent = by_id.get(parent.parent_span_id or "")
    return None


def _delivery_edge(process: Span, by_id: dict[str, Span]) -> Edge:
    kind = kind_of(str(process.attributes.get(DESTINATION, process.name.removeprefix("process "))))
    sender = by_id.get(process.parent_span_id or "")
    if kind.startswith(FRONT):
        src = HARNESS
    elif sender is not None:
        src = participant(sender)
    else:
        src = OTHER
    return Edge(src, participant(process), kind)


def _deliveries(
    saga: SagaTrace, by_id: dict[str, Span], ms: Clock, attempts: tuple[Attempt, ...]
) -> list[Delivery]:
    to_ms = ms
    found = []
    for span in saga.spans:
        if span.name.startswith("process "):
            edge = _delivery_edge(span, by_id)
        elif span.name.startswith("RunActivity:"):
            edge = Edge(
                WORKFLOW, _activity_lane(span, attempts, to_ms), span.name.partition(":")[2]
            )
        else:
            continue
        acted = next((c for c in span.children if is_step(c)), None)
        produced = tuple(
            kind_of(str(c.attributes.get(DESTINATION, "")))
            for c in _below(span)
            if c.name.startswith(PRODUCED)
        )
        found.append(
            Delivery(
                edge,
                to_ms(span.start_ns),
                to_ms(span.end_ns),
                str(acted.attributes[SAGA_STEP]) if acted is not None else None,
                produced,
                _about(span),
            )
        )
    return found


def _about(span: Span) -> str | None:
    step = span.attributes.get(SAGA_STEP)
    if step is None and span.name.startswith("RunActivity:"):
        return span.name.partition(":")[2]
    return str(step) if step is not None else None


def _below(span: Span) -> list[Span]:
    """The span's children, looking through steps (a step's events are created inside it)."""
    found = []
    for child in span.children:
        found.append(child)
        if is_step(child):
            found += child.children
    return found


def _activity_lane(span: Span, attempts: tuple[Attempt, ...], to_ms: Clock) -> str:
    """A step's activity runs in its service; the fence goes to the step it fences (the last
    forward step started before it); place and close are the orders service's."""
    lane = lane_of(span)
    if lane != OTHER:
        return lane
    start = to_ms(span.start_ns)
    started = [a for a in attempts if a.phase == "forward" and a.start_ms <= start]
    return started[-1].service if started else ORDERS


def _calls(saga: SagaTrace, ms: Clock) -> list[Delivery]:
    """The harness's Temporal client calls: start, signal, update (queries left out)."""
    found = []
    for span in saga.spans:
        operation, colon, target = span.name.partition(":")
        if not colon or lane_of(span) != HARNESS or operation.startswith("Query"):
            continue
        label = {
            "StartUpdateWithStartWorkflow": f"start {target} + place",
            "StartWorkflow": f"start {target}",
            "SignalWorkflow": f"{target} (signal)",
            "SignalWithStart": f"start {target} + signal",
            "StartWorkflowUpdate": f"{target} (update)",
        }.get(operation, span.name)
        found.append(
            Delivery(Edge(HARNESS, WORKFLOW, label), ms(span.start_ns), ms(span.end_ns), None)
        )
    return found


def _notices(saga: SagaTrace, ms: Clock) -> list[Delivery]:
    """The end notices the orders service publishes for the front door."""
    found = []
    for span in saga.spans:
        if not span.name.startswith("send "):
            continue
        kind = kind_of(str(span.attributes.get(DESTINATION, "")))
        if kind in ("order.completed", "front.saga.ended"):
            found.append(
                Delivery(Edge(ORDERS, HARNESS, kind), ms(span.start_ns), ms(span.end_ns), None)
            )
    return found


def _markers(
    saga: SagaTrace, ms: Clock, attempts: tuple[Attempt, ...], deadline_ms: float | None
) -> tuple[Marker, ...]:
    markers = [Marker("outcome", saga.root.duration_ms, _outcome_label(saga), HARNESS)]
    tracker_deadline = False
    for span in saga.spans:
        if span.name.startswith("cancel "):  # the choreography's tracker
            timed_out = span.name == "cancel timed_out"
            tracker_deadline |= timed_out
            label = "deadline: the tracker cancels" if timed_out else "cancel: by the customer"
            kind = "deadline" if timed_out else "cancel"
            markers.append(Marker(kind, ms(span.start_ns), label, ORDERS))
        elif span.name == "SignalWorkflow:cancel":
            markers.append(Marker("cancel", ms(span.start_ns), "cancel: by the customer", HARNESS))
    if saga.reason == "timed_out" and not tracker_deadline and deadline_ms is not None:
        markers.append(
            Marker("deadline", deadline_ms, "deadline: the workflow's timer fires", WORKFLOW)
        )
    for a in attempts:
        if a.faults:
            label = f"fault: {', '.join(a.faults)} on {a.step} attempt {a.attempt}"
            markers.append(Marker("fault", a.start_ms, label, a.service))
    return tuple(sorted(markers, key=lambda m: m.at_ms))


def _outcome_label(saga: SagaTrace) -> str:
    reason = f" ({saga.reason})" if saga.reason else ""
    return f"outcome: {saga.outcome}{reason}"
