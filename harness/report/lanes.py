"""Which swimlane (service or process) a span belongs to, and how it is drawn.

A span's resource ``service.name`` decides when it names one of the five services; when every
span comes from one process (the embedded runtimes), the lane is read off the span itself.
"""

from __future__ import annotations

import re

from harness.report.trace_file import Span
from harness.report.traces import is_retry, is_step
from shared.contracts import ServiceName
from shared.definitions import known_services, service_of_step
from shared.faults import FAULT_EVENT
from shared.telemetry import SAGA_OUTCOME, SAGA_PHASE, SAGA_STEP

HARNESS = "harness"
WORKFLOW = "workflow"
OTHER = "other"
SERVICES = known_services()
"""The services of every shipped definition (a trace may come from any of them)."""
LANE_ORDER = (HARNESS, WORKFLOW, *SERVICES)
CLIENT_CALLS = frozenset(
    {
        "StartWorkflow",
        "StartUpdateWithStartWorkflow",
        "StartWorkflowUpdate",
        "SignalWorkflow",
        "QueryWorkflow",
        "SignalWithStart",
    }
)
TRACKER_SPANS = ("close_saga", "cancel ")
"""The choreography tracker's spans; it runs inside the order service."""
PRODUCER, CLIENT, CONSUMER = 4, 3, 5
ERROR = 2


def lane_of(span: Span, *, root: bool = False) -> str:
    """The service or process the span ran in."""
    return _resource_service(span.service) or (HARNESS if root else _derived_lane(span))


def _resource_service(name: str) -> str | None:
    """The service a resource names, word for word (``choreography-inventory``, ``points``).

    No plural is guessed here: the worker's ``order-saga-worker`` is a process, not the
    ``orders`` service.
    """
    return next((token for token in re.split(r"[-_.: ]+", name.lower()) if token in SERVICES), None)


def lane_rank(lane: str) -> tuple[int, str]:
    """Coordination lanes first, then the services in saga order, then anything else."""
    return (LANE_ORDER.index(lane) if lane in LANE_ORDER else len(LANE_ORDER), lane)


def service_named(text: str) -> str | None:
    """The service a name mentions (``choreography-inventory``, ``place_order``), if any."""
    for token in re.split(r"[-_.: ]+", text.lower()):
        for candidate in (token, f"{token}s"):
            if candidate in SERVICES:
                return candidate
    return None


def _derived_lane(span: Span) -> str:
    step = span.attributes.get(SAGA_STEP)
    service = service_of_step(step) if isinstance(step, str) else None
    if service is not None:
        return service
    group = span.attributes.get("messaging.consumer.group.name")
    if isinstance(group, str) and group in SERVICES:
        return group
    operation, colon, target = span.name.partition(":")
    if colon:
        return _temporal_lane(operation, target)
    if span.name.startswith(TRACKER_SPANS):
        return ServiceName.ORDERS.value
    if span.kind == PRODUCER:
        return service_named(span.name.partition(" ")[2]) or OTHER
    return OTHER


def _temporal_lane(operation: str, target: str) -> str:
    """Temporal's ``Operation:Name`` spans: client calls, the workflow, or an activity."""
    if operation in CLIENT_CALLS:
        return HARNESS
    if operation == "RunActivity":
        return service_of_step(target) or service_named(target) or OTHER
    return WORKFLOW


def span_class(span: Span, *, root: bool = False) -> str:
    """CSS classes: the span's kind (saga, step, handler, send), a step's phase, and how a step
    attempt ended when it did not simply succeed: failed, a no-op compensation, or abandoned
    (an attempt cut off in flight: timed out, cancelled, never answered)."""
    if root:
        return "saga"
    if is_step(span):
        phase = "retry" if is_retry(span) else str(span.attributes.get(SAGA_PHASE, "forward"))
        outcome = span.attributes.get(SAGA_OUTCOME)
        if outcome == "noop":
            return f"step {phase} noop"
        if outcome == "cancelled" or (outcome is None and _hung(span)):
            return f"step {phase} abandoned"
        return f"step {phase}" + (" failed" if span.status == ERROR else "")
    if span.kind in (PRODUCER, CLIENT) or span.name.startswith(("StartActivity:", "Complete")):
        return "send"
    return "handler"


def _hung(span: Span) -> bool:
    """An attempt that was told to hang (and, in files from before attempts cut off in flight
    were marked ``cancelled``, reported nothing)."""
    return any(
        event["name"] == FAULT_EVENT and "hang" in str(event["attributes"].get("fault.kinds"))
        for event in span.events
    )
