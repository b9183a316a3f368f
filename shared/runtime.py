"""What the harness needs from a variant: start, cancel and observe sagas over one Domain.

Both `orchestration.runtime.open_runtime` and `choreography.runtime.open_runtime` return an
async context manager yielding a `SagaRuntime`; the contract tests and the harness drive
either through this protocol only.
"""

from __future__ import annotations

from typing import Protocol

from shared.contracts import OperatorAction, OrderRequest, SagaOutcome, SagaPolicy
from shared.services import Domain


class SagaStuck(RuntimeError):
    """A saga did not reach a terminal outcome in time; names the step it is stuck in."""

    def __init__(self, saga_id: str, step: str | None, waited_s: float) -> None:
        where = f"in {step}" if step else "before its first step"
        super().__init__(f"saga {saga_id} not terminal after {waited_s:.1f}s: stuck {where}")
        self.saga_id = saga_id
        self.step = step


class UnknownSaga(KeyError):
    """No saga has this id (never started, or refused before it started)."""

    def __init__(self, saga_id: str) -> None:
        super().__init__(f"unknown saga {saga_id!r}")
        self.saga_id = saga_id

    def __str__(self) -> str:
        return str(self.args[0])


class NotAwaitingOperator(RuntimeError):
    """An operator action on a saga that does not wait for one (running, or settled)."""

    def __init__(self, saga_id: str, status: str) -> None:
        super().__init__(f"saga {saga_id} does not wait for an operator (it is {status})")
        self.saga_id = saga_id


class OperatorUnavailable(RuntimeError):
    """An operator action that cannot be carried out now (who performs it is unreachable);
    its message is the one line to show."""


class SagaRuntime(Protocol):
    variant: str

    @property
    def domain(self) -> Domain:
        """The domain services this runtime's sagas act on (read-only: built at its root)."""
        ...

    async def start_saga(self, saga_id: str, order: OrderRequest, policy: SagaPolicy) -> None:
        """Place the order and start its saga; returns once the start is durable.

        Raises InvalidOrder (Inadmissible), before anything starts, for an order the live
        catalogue or customer records contradict or a policy beyond the limits. An order
        the services refuse anyway (the catalogue changed meanwhile) starts a saga that
        ends REJECTED.
        """
        ...

    async def cancel_saga(self, saga_id: str) -> None:
        """The customer's cancel: compensates unless the saga is past its pivot."""
        ...

    async def describe(self, saga_id: str) -> SagaOutcome:
        """The saga's live state: status, each step's status and attempts.

        A step is RUNNING from the moment it is requested (activity scheduled, triggering event
        published) until its result is known; the harness cancels "during" a step on that.
        Raises UnknownSaga for an id no saga has.
        """
        ...

    async def wait(self, saga_id: str, timeout_s: float) -> SagaOutcome:
        """The settled outcome — COMPLETED, COMPENSATED, REJECTED, or NEEDS_INTERVENTION
        (waiting for an operator); raises SagaStuck naming the step after ``timeout_s``."""
        ...

    async def retry_compensation(self, saga_id: str, who: str) -> OperatorAction:
        """An operator retries every failed compensation of a saga waiting for one (a fresh
        budget, the next round); returns the recorded action once its result is known.

        Raises NotAwaitingOperator when the saga does not wait for an operator.
        """
        ...

    async def retry_step(self, saga_id: str, who: str) -> OperatorAction:
        """An operator runs the failed step past the pivot of a saga waiting for one again (a
        fresh attempt, the next round), and the steps after it; returns the recorded action
        once its result is known: COMPLETED, still failing, or nothing to retry (a saga whose
        compensation failed). Raises NotAwaitingOperator when the saga does not wait."""
        ...

    async def resolve(self, saga_id: str, who: str, note: str) -> OperatorAction:
        """An operator marks a saga waiting for one resolved by hand, with a note; recorded,
        and the saga no longer waits. Raises NotAwaitingOperator otherwise."""
        ...
