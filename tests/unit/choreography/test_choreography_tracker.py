"""The tracker's projection is a pure fold: end decisions, reasons, and any interleaving.

Every fact merges by a join, so a saga's events folded in any order — reordered, duplicated,
late — give the view the in-order sequence gives. The one documented exception is not an
event at all: operator actions are recorded by the tracker itself, in the order it records
them (`SagaView.actions`).
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from choreography.events import CANCEL_REQUESTED, Event, Routing, placed
from choreography.projection import SagaView, decide, fold, fold_all, new_view, outcome
from harness.compare.scenarios import order
from shared.contracts import Phase, Reason, SagaPolicy, SagaStatus, StepName, StepStatus
from shared.definitions import ORDERS_V1
from shared.saga import SAGA

ROUTES = Routing(ORDERS_V1)
R, C, D, S, O = SAGA.forward_steps  # noqa: E741 - the five steps, by initial
DONE, NOOP, FAILED = StepStatus.DONE, StepStatus.NOOP, StepStatus.FAILED
START = 1_000.0
POLICY = SagaPolicy(deadline_s=30.0)


def start(points: int = 100) -> Event:
    return placed("s-1", order("o-1", points=points), POLICY, START, ORDERS_V1.ref)


def done(first: Event, step: str, trail: Sequence[str], at: float, attempts: int = 1) -> Event:
    return first.follow(
        ROUTES.done(step), trail=(*trail, step), step=step, status=DONE, attempts=attempts, at=at
    )


def failed(first: Event, step: str, trail: Sequence[str], at: float, reason: Reason) -> Event:
    return first.follow(
        ROUTES.failed(step), trail=tuple(trail), step=step, status=FAILED, attempts=1,
        reason=reason, at=at,
    )  # fmt: skip


def undone(first: Event, step: str, trail: Sequence[str], status: StepStatus, at: float) -> Event:
    compensation = SAGA.compensation_of(step)
    kind = ROUTES.compensated(step) if status is not FAILED else ROUTES.compensation_failed(step)
    return first.follow(
        kind, trail=tuple(trail), step=compensation, status=status, attempts=1, at=at
    )


def cancel(first: Event, at: float, reason: Reason, trail: Sequence[str] = ()) -> Event:
    return first.follow(CANCEL_REQUESTED, trail=tuple(trail), reason=reason, at=at)


def happy() -> list[Event]:
    first = start()
    trail: list[str] = []
    events = [first]
    for at, step in enumerate(SAGA.forward_steps, start=1):
        events.append(done(first, step, trail, START + at))
        trail.append(step)
    return events


def payment_declined() -> list[Event]:
    first = start()
    return [
        first,
        done(first, R, [], START + 1),
        failed(first, C, [R], START + 2, Reason.PAYMENT_DECLINED),
        undone(first, C, [R], NOOP, START + 3),
        undone(first, R, [R], DONE, START + 4),
    ]


def shipment_failed_refund_stuck() -> list[Event]:
    first = start()
    trail = [R, C, D]
    return [
        first,
        done(first, R, [], START + 1),
        done(first, C, [R], START + 2),
        done(first, D, [R, C], START + 3, attempts=3),
        failed(first, S, trail, START + 4, Reason.SHIPMENT_FAILED),
        undone(first, S, trail, NOOP, START + 5),
        undone(first, D, trail, DONE, START + 6),
        undone(first, C, trail, FAILED, START + 7),
        undone(first, R, trail, DONE, START + 8),
    ]


def failed_while_the_tracker_was_down() -> list[Event]:
    """Points refused at +3; the tracker, back after the deadline, cancels for +30."""
    first = start()
    return [
        first,
        done(first, R, [], START + 1),
        done(first, C, [R], START + 2),
        cancel(first, START + POLICY.deadline_s, Reason.TIMED_OUT, [R, C, D]),
        failed(first, D, [R, C], START + 3, Reason.INSUFFICIENT_POINTS),
        undone(first, D, [R, C], NOOP, START + 4),
        undone(first, C, [R, C], DONE, START + 5),
        undone(first, R, [R, C], DONE, START + 6),
    ]


def cancel_lost_to_the_pivot() -> list[Event]:
    first = start()
    events = happy()
    return [*events[:4], cancel(first, START + 3.5, Reason.CANCELLED_BY_CUSTOMER), *events[4:]]


def retry_step(first: Event, step: str, round: int, at: float) -> Event:
    """An operator's command to run a step past the pivot again (round n)."""
    trail = (R, C, D, S)
    return first.follow(ROUTES.retry_step(step), round=round, trail=trail, step=step, at=at)


def completion_retried() -> list[Event]:
    """The order's completion refused, refused again in round 1, done in round 2."""
    first = start()
    trail = [R, C, D, S]
    events = happy()[:5]  # up to shipping.created
    return [
        *events,
        failed(first, O, trail, START + 6, Reason.SHIPMENT_FAILED),
        retry_step(first, O, 1, START + 60),
        failed(first, O, trail, START + 61, Reason.SHIPMENT_FAILED).model_copy(
            update={"round": 1, "event_id": "s-1:order.failed#1"}
        ),
        retry_step(first, O, 2, START + 120),
        done(first, O, trail, START + 121).model_copy(
            update={"round": 2, "event_id": "s-1:order.completed#2"}
        ),
    ]


SCRIPTS = {
    "happy": happy,
    "payment_declined": payment_declined,
    "shipment_failed_refund_stuck": shipment_failed_refund_stuck,
    "failed_while_the_tracker_was_down": failed_while_the_tracker_was_down,
    "cancel_lost_to_the_pivot": cancel_lost_to_the_pivot,
    "completion_retried": completion_retried,
}


def view_of(events: Sequence[Event]) -> SagaView:
    return fold_all(new_view(events[0], SAGA), events, ROUTES)


def ended(view: SagaView) -> SagaStatus | None:
    decision = decide(view, SAGA)
    return decision[0] if decision else None


@st.composite
def interleavings(draw: st.DrawFn) -> tuple[str, list[Event], list[Event]]:
    """A script, and its events reordered with some delivered more than once."""
    name = draw(st.sampled_from(sorted(SCRIPTS)))
    events = SCRIPTS[name]()
    repeats = draw(st.lists(st.sampled_from(events), max_size=len(events)))
    return name, events, draw(st.permutations([*events, *repeats]))


@settings(max_examples=300, deadline=None)
@given(interleavings())
def test_any_interleaving_folds_to_the_view_of_the_in_order_sequence(
    case: tuple[str, list[Event], list[Event]],
) -> None:
    _, in_order, shuffled = case

    assert view_of(shuffled) == view_of(in_order)


@settings(max_examples=100, deadline=None)
@given(interleavings())
def test_folding_an_event_twice_changes_nothing(
    case: tuple[str, list[Event], list[Event]],
) -> None:
    _, in_order, shuffled = case
    view = view_of(shuffled)

    for event in in_order:
        assert fold(view, event, ROUTES) == view


def test_a_completed_saga_shows_every_step_done_whatever_order_its_events_came_in() -> None:
    events = happy()
    view = view_of(list(reversed(events)))

    current = outcome(view, SAGA)
    assert current.status is SagaStatus.COMPLETED
    assert [(s.step, s.status) for s in current.steps] == [(s, DONE) for s in SAGA.forward_steps]
    assert ended(view) is None


def test_no_end_while_the_chain_has_not_reached_the_first_step() -> None:
    events = shipment_failed_refund_stuck()
    view = view_of(events[:7])  # restore_points confirmed, refund and release not yet

    assert ended(view) is None
    running = [s.step for s in outcome(view, SAGA).steps if s.status is StepStatus.RUNNING]
    assert running == [StepName.REFUND_PAYMENT]


def test_compensated_once_every_compensation_is_confirmed() -> None:
    assert decide(view_of(payment_declined()), SAGA) == (
        SagaStatus.COMPENSATED,
        Reason.PAYMENT_DECLINED,
    )


def test_a_failed_compensation_ends_waiting_for_an_operator_with_the_original_reason() -> None:
    view = view_of(shipment_failed_refund_stuck())

    assert decide(view, SAGA) == (SagaStatus.NEEDS_INTERVENTION, Reason.SHIPMENT_FAILED)
    current = outcome(view, SAGA)
    assert current.failed_compensations == [StepName.REFUND_PAYMENT]
    assert [s.step for s in current.steps if s.phase is Phase.COMPENSATE] == [
        StepName.CANCEL_SHIPMENT,
        StepName.RESTORE_POINTS,
        StepName.REFUND_PAYMENT,
        StepName.RELEASE_INVENTORY,
    ]
    attempts = {s.step: s.attempts for s in current.steps if s.phase is Phase.FORWARD}
    assert attempts[D] == 3


def test_the_business_failure_that_came_first_decides_the_reason_after_a_tracker_outage() -> None:
    view = view_of(failed_while_the_tracker_was_down())

    assert decide(view, SAGA) == (SagaStatus.COMPENSATED, Reason.INSUFFICIENT_POINTS)
    assert outcome(view, SAGA).failed_step == D


def test_a_deadline_that_came_first_decides_the_reason_over_a_later_failure() -> None:
    first = start()
    events = [
        first,
        done(first, R, [], START + 1),
        cancel(first, START + 30, Reason.TIMED_OUT, [R, C]),
        failed(first, C, [R], START + 31, Reason.PAYMENT_DECLINED),
        undone(first, C, [R], NOOP, START + 32),
        undone(first, R, [R], DONE, START + 33),
    ]

    view = view_of(events)
    assert decide(view, SAGA) == (SagaStatus.COMPENSATED, Reason.TIMED_OUT)
    assert outcome(view, SAGA).failed_step is None


def test_a_cancel_that_lost_the_race_with_the_pivot_is_void() -> None:
    current = outcome(view_of(cancel_lost_to_the_pivot()), SAGA)

    assert (current.status, current.reason, current.failed_step) == (
        SagaStatus.COMPLETED,
        None,
        None,
    )


def test_a_step_refused_after_the_pivot_waits_for_an_operator() -> None:
    first = start()
    events = happy()[:5]  # up to shipping.created
    refused = failed(first, O, [R, C, D, S], START + 6, Reason.SHIPMENT_FAILED)

    view = view_of([*events, refused])
    assert decide(view, SAGA) == (SagaStatus.NEEDS_INTERVENTION, None)
    assert outcome(view, SAGA).failed_step == O


def test_a_step_that_does_not_apply_is_reported_skipped() -> None:
    first = start(points=0)

    current = outcome(view_of([first]), SAGA)
    assert {s.step: s.status for s in current.steps}[D] is StepStatus.SKIPPED


def test_a_step_past_the_pivot_retried_until_it_is_done_completes_the_saga() -> None:
    events = completion_retried()

    view = view_of(events)
    current = outcome(view, SAGA)
    assert (current.status, current.reason, current.failed_step) == (
        SagaStatus.COMPLETED,
        None,
        None,
    )
    assert {s.step: s.status for s in current.steps}[O] is DONE
    assert ended(view) is None  # completed by its step, as without a retry


def test_while_an_operator_s_retry_runs_the_step_past_the_pivot_is_running_again() -> None:
    events = completion_retried()

    waiting = outcome(view_of(events[:6]), SAGA)
    retrying = outcome(view_of(events[:7]), SAGA)
    failed_again = outcome(view_of(events[:8]), SAGA)

    assert {s.step: s.status for s in waiting.steps}[O] is FAILED
    assert {s.step: s.status for s in retrying.steps}[O] is StepStatus.RUNNING
    assert {s.step: s.status for s in failed_again.steps}[O] is FAILED
    assert failed_again.failed_step == O


def test_the_view_of_a_saga_no_operator_retried_is_stored_in_the_previous_shape() -> None:
    stored = view_of(happy()).model_dump(mode="json")

    assert all(
        set(facts) == {"started", "result", "attempts"} for facts in stored["steps"].values()
    )
    retried = view_of(completion_retried()).model_dump(mode="json")
    assert retried["steps"][O]["round"] == 2
