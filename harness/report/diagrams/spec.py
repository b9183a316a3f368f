"""The diagrams the saga's spec declares: its states, and each style's messages.

Everything is derived from a `SagaSpec` (and, for the choreography, the `Routing` it gives):
add a step to the spec and the diagrams follow. The sequence diagrams use the lanes the
trace diagrams use (harness, workflow, then the services in saga order, orders last), so a
spec diagram and a trace diagram can be read side by side.
"""

from __future__ import annotations

import itertools

from choreography.events import CANCEL_REQUESTED, Routing
from harness.report.diagrams.model import (
    START,
    Block,
    Item,
    Message,
    Note,
    Participant,
    Sequence,
    State,
    StateDiagram,
    StateNote,
    Transition,
)
from harness.report.palette import PALETTE, rgb
from shared.definition import SagaDefinition
from shared.saga import SagaSpec, StepSpec

COMPLETED, COMPENSATED, OPERATOR = "COMPLETED", "COMPENSATED", "NEEDS_INTERVENTION"
HARNESS, WORKFLOW, ORDERS = "harness", "workflow", "orders"
STYLES = (
    ("forward", f"fill:{PALETTE['forward-light']},stroke:{PALETTE['forward']}"),
    ("pivot", f"fill:{PALETTE['forward-light']},stroke:{PALETTE['forward']},stroke-width:3px"),
    ("compensation", f"fill:{PALETTE['compensate-light']},stroke:{PALETTE['compensate']}"),
    ("ok", f"fill:{PALETTE['completed']},stroke:{PALETTE['forward']}"),
    ("undone", f"fill:{PALETTE['compensated']},stroke:{PALETTE['compensate']}"),
    ("operator", f"fill:{PALETTE['needs-intervention']},stroke:{PALETTE['failed']}"),
)


def state_diagram(saga: SagaSpec) -> StateDiagram:
    """Steps left to right, compensations right to left under them, the three ends."""
    states = [
        State(s.name, f"{s.name} ({s.service})", "pivot" if s.pivot else "forward")
        for s in saga.steps
    ]
    states += [
        State(s.compensation, f"{s.compensation} ({s.service})", "compensation")
        for s in saga.steps
        if s.compensation
    ]
    states += [
        State(COMPLETED, COMPLETED, "ok"),
        State(COMPENSATED, COMPENSATED, "undone"),
        State(OPERATOR, f"{OPERATOR} (waits for an operator)", "operator"),
    ]
    return StateDiagram(
        "The order saga's states, from the spec",
        tuple(states),
        tuple(_transitions(saga)),
        tuple(_state_notes(saga)),
        STYLES,
    )


def _transitions(saga: SagaSpec) -> list[Transition]:
    steps = saga.steps
    found = [Transition(START, steps[0].name, "placed")]
    for index, step in enumerate(steps):
        after = steps[index + 1].name if index + 1 < len(steps) else COMPLETED
        found.append(Transition(step.name, after, _done_label(step)))
        if step.compensation is None:
            found.append(Transition(step.name, OPERATOR, "failed after the pivot"))
            continue
        found.append(Transition(step.name, step.compensation, f"failed: {step.failure_reason}"))
    undoing = [s for s in steps if s.compensation]
    for index, step in enumerate(undoing):
        assert step.compensation is not None and step.compensated is not None
        before = undoing[index - 1].compensation if index else COMPENSATED
        assert before is not None
        found.append(Transition(step.compensation, before, step.compensated))
        found.append(Transition(step.compensation, OPERATOR, "budget spent"))
    return found


def _done_label(step: StepSpec) -> str:
    return f"{step.done} or skipped" if step.skip_unless else step.done


def _state_notes(saga: SagaSpec) -> list[StateNote]:
    first = saga.steps[0]
    notes = [
        StateNote(
            first.name,
            "an order the catalogue, the customer records or the limits contradict never gets"
            " here: refused on arrival, the saga ends REJECTED with nothing done",
        ),
        StateNote(
            first.name,
            "a cancel, or the deadline, before the pivot commits fences the step in flight:"
            " it is refused and the steps that acted are undone, last first",
        ),
        StateNote(
            saga.pivot,
            "the pivot: once it has committed, a cancel or the deadline is ignored and nothing"
            " is undone",
        ),
    ]
    notes += [
        StateNote(
            step.name,
            f"skipped when the order's {step.skip_unless} is 0, and then {step.compensation}"
            " has nothing to undo",
        )
        for step in saga.steps
        if step.skip_unless
    ]
    own = first.compensation
    if own is not None:
        notes.append(
            StateNote(
                own, f"a failed step undoes itself first: {own} and the others record a no-op"
            )
        )
    return notes


def lanes(saga: SagaSpec, *, workflow: bool) -> tuple[Participant, ...]:
    """The harness, the workflow (orchestration), then the services, orders last."""
    services = [s for s in saga.services if s != ORDERS] + [ORDERS]
    keys = [HARNESS, *([WORKFLOW] if workflow else []), *services]
    return tuple(Participant(key, key) for key in keys)


def choreography_sequence(definition: SagaDefinition) -> Sequence:
    """Events from service to service: the order placed, each step's trigger, the hand-backs."""
    saga, routing = definition.spec, Routing(definition)
    steps = saga.steps
    items: list[Item] = [
        Message(HARNESS, ORDERS, "front.order.place (command)"),
        Note((ORDERS,), "ran: order recorded, saga tracked, deadline armed"),
    ]
    producer = ORDERS
    for step in steps:
        items.append(
            Message(producer, step.service, " or ".join(routing.triggers(step.name)), "-)")
        )
        items.append(Note((step.service,), _step_note(step)))
        producer = step.service
    items.append(Message(ORDERS, HARNESS, f"{routing.done(steps[-1].name)} (notice)", "--)"))
    items.append(_choreography_undo(saga, routing))
    items.append(_choreography_cancel(saga, routing))
    return Sequence(
        "Choreography, from the spec: the events each service reacts to",
        lanes(saga, workflow=False),
        tuple(items),
    )


def _step_note(step: StepSpec) -> str:
    note = f"done: {step.name}"
    if step.skip_unless:
        note += f" (skipped when {step.skip_unless} is 0)"
    return note


def _choreography_undo(saga: SagaSpec, routing: Routing) -> Block:
    """The pivot fails: it undoes itself (a no-op), then each service hands the chain back."""
    pivot = saga.step(saga.pivot)
    items: list[Item] = [
        Message(pivot.service, pivot.service, routing.failed(pivot.name), "-x"),
        Note((pivot.service,), f"no-op: {pivot.compensation} (nothing to undo)"),
    ]
    undoing = [s for s in saga.steps if s.compensation][::-1]
    for later, step in itertools.pairwise(undoing):
        items.append(Message(later.service, step.service, routing.compensated(later.name), "-)"))
        items.append(Note((step.service,), f"undone: {step.compensation}"))
    last = undoing[-1]
    items.append(Message(last.service, ORDERS, routing.compensated(last.name), "-)"))
    items.append(Note((ORDERS,), "outcome: COMPENSATED (the tracker closes the saga)"))
    items.append(Message(ORDERS, HARNESS, "front.saga.ended (notice)", "--)"))
    return Block("rect", rgb("compensate-light"), (_title(f"if {pivot.name} fails"), *items))


def _title(text: str) -> Note:
    return Note((HARNESS,), text)


def _choreography_cancel(saga: SagaSpec, routing: Routing) -> Block:
    """A cancel before the pivot: every service fences its step; the one in flight refuses."""
    pivot = saga.step(saga.pivot)
    index = saga.index(pivot.name)
    before = saga.steps[index - 1] if index else None
    services = tuple(dict.fromkeys(s.service for s in saga.steps if s.compensation))
    items: list[Item] = [
        Message(HARNESS, ORDERS, "front.order.cancel (command)"),
        Note((ORDERS,), "cancel: asked by the customer, or by the tracker at the deadline"),
        Message(ORDERS, services[0], f"{CANCEL_REQUESTED} (to every service)", "-)"),
        Note((services[0], services[-1]), "each service fences its step: refused if not committed"),
    ]
    if before is not None:
        items.append(Message(pivot.service, before.service, routing.refused(pivot.name), "-)"))
        items.append(Note((before.service,), "then the hand-backs undo what acted, last first"))
    return Block("opt", "cancel or deadline before the pivot commits", tuple(items))


def orchestration_sequence(saga: SagaSpec) -> Sequence:
    """One workflow calling each step as an activity and, on failure, the compensations."""
    steps = saga.steps
    items: list[Item] = [
        Message(HARNESS, WORKFLOW, "start OrderSaga + place (update with start)"),
        Message(WORKFLOW, ORDERS, "place_order"),
        Message(ORDERS, WORKFLOW, "placed", "-->>"),
    ]
    for step in steps:
        items.append(Message(WORKFLOW, step.service, step.name))
        items.append(Message(step.service, WORKFLOW, step.done, "-->>"))
    items.append(Note((WORKFLOW,), "outcome: COMPLETED (the workflow returns)"))
    items.append(Message(WORKFLOW, HARNESS, "result", "-->>"))
    items.append(_orchestration_undo(saga))
    items.append(_orchestration_cancel(saga))
    return Sequence(
        "Orchestration, from the spec: the workflow's activity calls",
        lanes(saga, workflow=True),
        tuple(items),
    )


def _orchestration_undo(saga: SagaSpec) -> Block:
    pivot = saga.step(saga.pivot)
    items: list[Item] = [
        _title(f"if {pivot.name} fails"),
        Message(pivot.service, WORKFLOW, f"failed: {pivot.failure_reason}", "--x"),
    ]
    for step in [s for s in saga.steps if s.compensation][::-1]:
        assert step.compensation is not None
        items.append(Message(WORKFLOW, step.service, step.compensation))
        reply = "no-op" if step.name == pivot.name else str(step.compensated)
        items.append(Message(step.service, WORKFLOW, reply, "-->>"))
    items.append(Message(WORKFLOW, ORDERS, "close_order (COMPENSATED)"))
    items.append(Message(WORKFLOW, HARNESS, "outcome: COMPENSATED", "-->>"))
    return Block("rect", rgb("compensate-light"), tuple(items))


def _orchestration_cancel(saga: SagaSpec) -> Block:
    pivot = saga.step(saga.pivot)
    items: tuple[Item, ...] = (
        Message(HARNESS, WORKFLOW, "cancel (signal), or the deadline's timer fires"),
        Message(WORKFLOW, pivot.service, f"fence_step {pivot.name} (the step in flight)"),
        Message(pivot.service, WORKFLOW, "fenced: its attempt will be refused", "-->>"),
        Note((WORKFLOW,), "then the steps that acted are undone, last first"),
    )
    return Block("opt", "cancel or deadline before the pivot commits", items)
