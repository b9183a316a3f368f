"""An operator's actions on a saga that waits for one, as the tracker carries them out.

``retry_compensation`` records the action (round n) and sends one command per failed
compensation; ``retry_step`` records the action (round n) and sends the command that runs the
failed step past the pivot again; ``resolve`` records the note and the saga no longer waits.
Recording an action keeps the results earlier retries came to (`projection.actions`). The
embedded runtime calls them directly; a front door elsewhere sends an operator command over
NATS, and the tracker host's desk calls them with the command's id (choreography/operator.py),
which joins the orders inbox in the same transaction: a redelivered command changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from choreography import inbox, outbox
from choreography.bus import Outgoing
from choreography.projection import SagaView, acted_steps, actions, outcome, started_steps
from choreography.tracker import table
from choreography.views import Views
from shared.contracts import Action, ActionResult, OperatorAction, SagaOutcome, SagaStatus
from shared.runtime import NotAwaitingOperator, UnknownSaga
from shared.store import Store, Tx

OPERATOR_INBOX = "operator"
"""The inbox's consumer name for operator commands (choreography/operator.py)."""

Refusal = NotAwaitingOperator | UnknownSaga
"""Why an operator action was refused."""


class DuplicateCommand(Exception):
    """An operator command the tracker already acted on (or refused): nothing is done again."""

    def __init__(self, command: str) -> None:
        super().__init__(f"operator command {command} was handled already")
        self.command = command


def check_waiting(current: SagaOutcome) -> None:
    """NotAwaitingOperator unless the saga waits for an operator (NEEDS_INTERVENTION, not
    resolved, no retry under way): what the tracker checks, and a front door before asking."""
    pending = any(a.result is ActionResult.PENDING for a in current.actions)
    if current.status is not SagaStatus.NEEDS_INTERVENTION or current.resolved or pending:
        state = "resolved" if current.resolved else current.status.value
        raise NotAwaitingOperator(current.saga_id, "being retried" if pending else state)


class OperatorActions:
    """Retry and resolve, each one transaction on the saga's view (and its outbox rows)."""

    def __init__(
        self,
        store: Store,
        views: Views,
        hand_over: table.HandOver,
        ended: Callable[[str], None],
    ) -> None:
        self.store = store
        self.views = views
        self.hand_over = hand_over
        self._ended = ended

    async def retry_compensation(
        self, saga_id: str, who: str, *, command: str | None = None
    ) -> OperatorAction:
        """An operator retries the failed compensations: one command per service (round n).

        Returns the action as recorded (pending, or nothing to retry); its result follows
        from the round's answers (`Queries.wait_action`). ``command`` is the id of the operator
        command asking for it (`choreography.operator`): recorded in the inbox in the same
        transaction, so a redelivered command raises DuplicateCommand and starts no round.
        """
        now = time.time()

        def work(tx: Tx) -> tuple[OperatorAction | Refusal, list[Outgoing | None]]:
            waiting = self._waiting_once(tx, saga_id, command)
            if not isinstance(waiting, tuple):
                return waiting, []
            view, current = waiting
            failed = tuple(current.failed_compensations)
            if not failed:
                nothing = OperatorAction(
                    action=Action.RETRY_COMPENSATION,
                    who=who,
                    at=now,
                    result=ActionResult.NOTHING_TO_RETRY,
                )
                return self._record(tx, view, nothing), []
            round = max(view.rounds, default=0) + 1
            action = OperatorAction(action=Action.RETRY_COMPENSATION, who=who, at=now, round=round)
            self._record(tx, view, action, rounds={**view.rounds, round: failed})
            placed = table.placed(tx, saga_id, self.views)
            routing = self.views.routing_of(view)  # the saga's own definition's rules
            commands = [
                placed.follow(
                    routing.retry_compensation(compensation),
                    round=round,
                    step=compensation,
                    reason=current.reason,
                    trail=started_steps(view, routing.saga),
                )
                for compensation in failed
            ]
            return action, [outbox.add(tx, command) for command in commands]

        action, rows = await self.store.run(work, key=saga_id)
        self.hand_over(rows)
        if isinstance(action, Exception):
            raise action
        return action

    async def retry_step(
        self, saga_id: str, who: str, *, command: str | None = None
    ) -> OperatorAction:
        """An operator runs the failed step past the pivot again: one command (round n) to its
        service, which answers ``done`` (the saga completes) or ``failed`` of that round.

        Returns the action as recorded (pending, or nothing to retry when no step past the
        pivot failed); ``command`` as for `retry_compensation`.
        """
        now = time.time()

        def work(tx: Tx) -> tuple[OperatorAction | Refusal, list[Outgoing | None]]:
            waiting = self._waiting_once(tx, saga_id, command)
            if not isinstance(waiting, tuple):
                return waiting, []
            view, current = waiting
            routing = self.views.routing_of(view)  # the saga's own definition's rules
            saga = routing.saga
            step = current.failed_step
            if step is None or current.failed_compensations or not saga.after_pivot(step):
                nothing = OperatorAction(
                    action=Action.RETRY_STEP,
                    who=who,
                    at=now,
                    result=ActionResult.NOTHING_TO_RETRY,
                )
                return self._record(tx, view, nothing), []
            round = max(view.rounds, default=0) + 1
            action = OperatorAction(action=Action.RETRY_STEP, who=who, at=now, round=round)
            self._record(tx, view, action, rounds={**view.rounds, round: (step,)})
            again = table.placed(tx, saga_id, self.views).follow(
                routing.retry_step(step),
                round=round,
                step=step,
                trail=acted_steps(view, saga),
            )
            return action, [outbox.add(tx, again)]

        action, rows = await self.store.run(work, key=saga_id)
        self.hand_over(rows)
        if isinstance(action, Exception):
            raise action
        return action

    async def resolve(
        self, saga_id: str, who: str, note: str, *, command: str | None = None
    ) -> OperatorAction:
        """An operator finished the saga by hand: recorded, and it no longer waits.

        ``command``: as for `retry_compensation` (a redelivery raises DuplicateCommand).
        """
        action = OperatorAction(
            action=Action.RESOLVE, who=who, at=time.time(), note=note, result=ActionResult.RESOLVED
        )

        def work(tx: Tx) -> Refusal | None:
            waiting = self._waiting_once(tx, saga_id, command)
            if not isinstance(waiting, tuple):
                return waiting
            self._record(tx, waiting[0], action)
            return None

        refused = await self.store.run(work, key=saga_id)
        if refused is not None:
            raise refused
        self._ended(saga_id)
        return action

    def _record(
        self, tx: Tx, view: SagaView, action: OperatorAction, **changes: object
    ) -> OperatorAction:
        """The action joins the saga's view; the earlier ones keep the results they came to."""
        update = {"actions": (*actions(view), action), **changes}
        table.save(tx, [view.model_copy(update=update)], self.views)
        return action

    def _waiting(self, tx: Tx, saga_id: str) -> tuple[SagaView, SagaOutcome]:
        """The view of a saga that waits for an operator, or NotAwaitingOperator."""
        view = table.load(tx, [saga_id], self.views).get(saga_id)
        if view is None:
            raise UnknownSaga(saga_id)
        current = outcome(view, self.views.spec_of(view))
        check_waiting(current)
        return view, current

    def _waiting_once(
        self, tx: Tx, saga_id: str, command: str | None
    ) -> tuple[SagaView, SagaOutcome] | Refusal:
        """`_waiting`, for an operator command at most once: its id joins the inbox first
        (DuplicateCommand if it is there), and a refusal is returned, not raised, so that the
        inbox row commits with it (a redelivery is a duplicate, never acted on later)."""
        if command is None:
            return self._waiting(tx, saga_id)
        if not inbox.record(tx, OPERATOR_INBOX, command, saga_id):
            raise DuplicateCommand(command)
        try:
            return self._waiting(tx, saga_id)
        except (NotAwaitingOperator, UnknownSaga) as refused:
            return refused
