"""Drift: the flow the spec declares for a saga's expected outcome against the flow its trace shows.

The spec (`SagaSpec`, and for the choreography the `Routing` it gives) declares, for an outcome,
which steps run in which order and what triggers each: in the choreography the event and the
service that sends it, in the orchestration the workflow's call. Where the saga turned back (the
step that failed, the one a cancel fenced, or the one a cancel kept from starting) is part of
the outcome; how many attempts a step took, and redeliveries answered by an inbox, are not part
of the flow.

A saga drifts when its trace misses a step or a trigger the spec declares (missing), shows one
it does not (extra), or runs two steps the other way round (out of order). A trace without step
spans (an attached run that could not read the services' spans) is not checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from choreography.events import PLACED, Routing
from harness.compare.results import FlowDrift, Results, SagaResult, with_drift
from harness.compare.scenarios import BY_NAME
from harness.report.flow import Edge, SagaFlow, flow_of
from harness.report.lanes import WORKFLOW
from harness.report.traces import SagaTrace
from shared.contracts import OrderRequest
from shared.definition import SagaDefinition
from shared.definitions import ORDERS_V1, definition_named
from shared.saga import SagaSpec

ORDERS = "orders"


@dataclass(frozen=True)
class Outcome:
    """What a saga ended in, as far as its flow depends on it."""

    status: str
    failed_step: str | None = None
    """The step whose failure turned the saga back (a business failure, or one past the pivot)."""
    refused: str | None = None
    """The forward step a cancel fenced in flight: its attempt was refused."""
    stopped_before: str | None = None
    """The forward step a cancel kept from starting (the workflow never called it)."""
    failed_compensations: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    """Forward steps that do not apply to the order (its ``skip_unless`` field is 0)."""


@dataclass(frozen=True)
class Expect:
    """One step on the declared path, with its trigger; ``skipped``: answered, not run."""

    step: str
    trigger: Edge
    skipped: bool = False


@dataclass(frozen=True)
class Drift:
    """One saga's differences from its declared flow (all empty: none)."""

    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    out_of_order: tuple[str, ...] = ()

    @property
    def findings(self) -> tuple[str, ...]:
        return (
            *(f"missing {m}" for m in self.missing),
            *(f"extra {e}" for e in self.extra),
            *(f"out of order: {o}" for o in self.out_of_order),
        )

    def __bool__(self) -> bool:
        return bool(self.findings)


def declared(outcome: Outcome, variant: str, definition: SagaDefinition) -> list[Expect]:
    """The steps the spec runs for this outcome, in order, each with its trigger."""
    saga, routing = definition.spec, Routing(definition)
    events = variant == "choreography"
    turn = outcome.failed_step or outcome.refused
    path: list[Expect] = []
    acted: list[str] = []
    producer, kind = ORDERS, PLACED
    for step in saga.steps:
        if step.name == outcome.stopped_before:
            break
        trigger = Edge(producer, step.service, kind) if events else _call(step.service, step.name)
        if step.name in outcome.skipped:
            if events:
                path.append(Expect(step.name, trigger, skipped=True))
            producer, kind = step.service, routing.skipped(step.name)
            continue
        path.append(Expect(step.name, trigger))
        if step.name == turn:
            break
        acted.append(step.name)
        producer, kind = step.service, routing.done(step.name)
    if outcome.status == "COMPLETED" or (turn is not None and saga.after_pivot(turn)):
        return path
    return path + _undo(outcome, acted, events, routing, saga)


def _undo(
    outcome: Outcome, acted: list[str], events: bool, routing: Routing, saga: SagaSpec
) -> list[Expect]:
    """The compensations, last first: a failed step undoes itself (a no-op), then each step
    that acted, each handed the chain by the one before it (or called by the workflow)."""
    undo: list[Expect] = []
    link: tuple[str, str] | None = None  # (service, event) that hands the chain on
    if outcome.failed_step is not None:
        own = saga.step(outcome.failed_step)
        assert own.compensation is not None
        trigger = Edge(own.service, own.service, routing.failed(own.name))
        undo.append(
            Expect(own.compensation, trigger if events else _call(own.service, own.compensation))
        )
        link = (own.service, _answer(routing, own.name, outcome))
    elif outcome.refused is not None:
        fenced = saga.step(outcome.refused)
        link = (fenced.service, routing.refused(fenced.name))
    for name in reversed(acted):
        step = saga.step(name)
        assert step.compensation is not None
        if events and link is not None:
            trigger = Edge(link[0], step.service, link[1])
        else:
            trigger = _call(step.service, step.compensation)
        undo.append(Expect(step.compensation, trigger))
        link = (step.service, _answer(routing, name, outcome))
    return undo


def _answer(routing: Routing, step: str, outcome: Outcome) -> str:
    """The event a compensation hands the chain on with: done, or failed for good."""
    compensation = routing.saga.step(step).compensation
    if compensation in outcome.failed_compensations:
        return routing.compensation_failed(step)
    return routing.compensated(step)


def _call(service: str, step: str) -> Edge:
    return Edge(WORKFLOW, service, step)


@dataclass(frozen=True)
class Seen:
    """A step the trace shows: its first attempt's trigger (or the skip's delivery)."""

    step: str
    trigger: Edge | None
    at_ms: float
    skipped: bool = False


def seen(flow: SagaFlow) -> list[Seen]:
    """The steps the trace shows, in the order their first attempt (or skip) started."""
    found: dict[str, Seen] = {}
    for a in flow.attempts:
        if a.step not in found:
            found[a.step] = Seen(a.step, a.trigger, a.start_ms)
    for d in flow.deliveries:
        skip = any(k.endswith(".skipped") for k in d.produced)
        if d.acted is None and skip and d.about and d.about not in found:
            found[d.about] = Seen(d.about, d.edge, d.start_ms, skipped=True)
    return sorted(found.values(), key=lambda s: s.at_ms)


def drift(flow: SagaFlow, outcome: Outcome, definition: SagaDefinition) -> Drift | None:
    """The saga's drift from its declared flow; None when the trace holds no step spans."""
    if not flow.has_steps:
        return None
    expected = declared(outcome, flow.variant, definition)
    actual = seen(flow)
    wanted = {e.step: e for e in expected}
    shown = {s.step: s for s in actual}
    missing = [_describe(e.step, e.trigger, e.skipped) for e in expected if e.step not in shown]
    extra = [_describe(s.step, s.trigger, s.skipped) for s in actual if s.step not in wanted]
    for step in (e.step for e in expected if e.step in shown):
        want, got = wanted[step], shown[step]
        if got.trigger is not None and got.trigger != want.trigger:
            missing.append(f"trigger {want.trigger} (of {step})")
            extra.append(f"trigger {got.trigger} (of {step})")
    return Drift(tuple(missing), tuple(extra), tuple(_disorder(expected, actual)))


def _describe(step: str, trigger: Edge | None, skipped: bool) -> str:
    what = "skip of" if skipped else "step"
    return f"{what} {step}" + (f" (after {trigger})" if trigger is not None else "")


def _disorder(expected: list[Expect], actual: list[Seen]) -> list[str]:
    """Each step the trace shows before one the spec puts ahead of it (first such pair)."""
    rank = {e.step: i for i, e in enumerate(expected)}
    order = [s.step for s in actual if s.step in rank]
    found = []
    for index, step in enumerate(order):
        later = [o for o in order[index + 1 :] if rank[o] < rank[step]]
        if later:
            found.append(f"{step} ran before {later[0]}")
    return found


def outcome_of_result(result: SagaResult, definition: SagaDefinition) -> Outcome:
    """The flow-shaping facts of a saga's expected outcome (``results.json``'s row).

    Status and reason are the catalogue's expectation when there is one; where a cancel
    turned the saga back (the step refused, or kept from starting) is the saga's own report.
    """
    saga = definition.spec
    status = result.expected.status if result.expected else result.status
    reason = result.expected.reason if result.expected else result.reason
    steps = {s.step: s.status for s in result.steps if s.phase == "forward"}
    skipped = tuple(step for step, status_ in steps.items() if status_ == "skipped")
    if status == "COMPLETED":
        return Outcome(status, skipped=skipped)
    failed = _business_step(reason, saga) or (result.failed_step if reason is None else None)
    refused = stopped = None
    if failed is None:
        refused = next((step for step, s in steps.items() if s == "rejected"), None)
        if refused is None:
            stopped = next((step for step, s in steps.items() if s == "pending"), None)
    return Outcome(
        status,
        failed_step=failed,
        refused=refused,
        stopped_before=stopped,
        failed_compensations=tuple(result.failed_compensations),
        skipped=skipped,
    )


def _business_step(reason: str | None, saga: SagaSpec) -> str | None:
    """The step whose business failure gives this reason (``out_of_stock``: reserve)."""
    return next((s.name for s in saga.steps if s.failure_reason == reason), None)


def outcome_of_trace(
    trace: SagaTrace,
    flow: SagaFlow,
    order: OrderRequest | None,
    definition: SagaDefinition,
) -> Outcome:
    """The same facts from the trace alone (a report without ``results.json``)."""
    saga = definition.spec
    status, reason = trace.outcome, trace.reason
    if order is not None:
        skipped = tuple(s.name for s in saga.steps if not s.applies(order))
    else:
        skipped = tuple(s.step for s in seen(flow) if s.skipped)
    if status == "COMPLETED":
        return Outcome(status, skipped=skipped)
    last: dict[str, str] = {a.step: a.outcome for a in flow.attempts}
    failed = _business_step(reason, saga)
    if failed is None and reason is None:
        failed = next((s for s, o in last.items() if o == "failed" and saga.after_pivot(s)), None)
    refused = stopped = None
    if failed is None:
        refused = next((s for s, o in last.items() if o == "rejected"), None)
        if refused is None:
            ran = [s.name for s in saga.steps if s.name in last]
            rest = [s.name for s in saga.steps[len(ran) :] if s.name not in skipped]
            stopped = rest[0] if rest else None
    compensations = set(saga.compensations)
    broken = tuple(
        s
        for s, o in last.items()
        if status == "NEEDS_INTERVENTION" and s in compensations and o not in ("done", "noop")
    )
    return Outcome(status, failed, refused, stopped, broken, skipped)


def deadline_ms(scenario: str) -> float | None:
    """The catalogue scenario's deadline (it marks a workflow's timer, which has no span)."""
    known = BY_NAME.get(scenario)
    return known.policy.deadline_s * 1000 if known else None


def definition_of(results: Results | None) -> SagaDefinition:
    """The definition the results' sagas ran (their run conditions say; a file without them
    is from before there was more than one, v1)."""
    if results is None or results.conditions is None:
        return ORDERS_V1
    return definition_named(results.conditions.definition)


def saga_drift(
    trace: SagaTrace, flow: SagaFlow, results: Results | None, definition: SagaDefinition
) -> Drift | None:
    """The saga's drift from ``definition``: against its expected outcome from
    ``results.json``, or else what its trace and the catalogue say; None when the trace holds
    no step spans."""
    row = _row_of(trace, results)
    if row is not None:
        return drift(flow, outcome_of_result(row, definition), definition)
    known = BY_NAME.get(trace.scenario)
    cases = known.sagas if known else ()
    order = next((c.order for c in cases if c.order.order_id == trace.order_id), None)
    return drift(flow, outcome_of_trace(trace, flow, order, definition), definition)


def _row_of(trace: SagaTrace, results: Results | None) -> SagaResult | None:
    key = (trace.repeat, trace.variant, trace.scenario, trace.order_id)
    rows = results.results if results else []
    return next((r for r in rows if (r.repeat, r.variant, r.scenario, r.order_id) == key), None)


def check_flows(results: Results, traces: list[SagaTrace]) -> Results:
    """The results with every saga's flow checked against the spec (``drift`` in results.json)."""
    found: list[FlowDrift] = []
    checked = 0
    definition = definition_of(results)
    for trace in traces:
        flow = flow_of(trace, deadline_ms(trace.scenario))
        result = saga_drift(trace, flow, results, definition)
        if result is None:
            continue
        checked += 1
        if result:
            found.append(
                FlowDrift(
                    repeat=trace.repeat,
                    variant=trace.variant,
                    scenario=trace.scenario,
                    order_id=trace.order_id,
                    findings=list(result.findings),
                )
            )
    return with_drift(results, checked, found)
