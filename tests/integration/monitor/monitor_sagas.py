"""Timings and faults of the sagas the monitor's integration tests run."""

from __future__ import annotations

from shared.contracts import Phase, SagaPolicy, StepName
from shared.faults import FaultPlan, FaultRule

POLICY = SagaPolicy(
    deadline_s=30.0,
    attempt_timeout_s=1.0,
    initial_backoff_s=0.05,
    max_backoff_s=0.2,
    compensation_attempts=2,
)
SHIPMENT_FAILS = FaultRule(step=StepName.CREATE_SHIPMENT, permanent=True)
REFUND_FAILS = FaultRule(step=StepName.CHARGE_PAYMENT, phase=Phase.COMPENSATE, permanent=True)
COMPLETION_REFUSED = FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, permanent=True)])
"""The order cannot be completed in the saga's own run (`completion_refused`); an operator's
retry of the step meets a repaired service."""


def stuck(rounds: int) -> FaultPlan:
    """The shipment fails, and the refund fails in the saga's own run and ``rounds - 1``
    operator retries: the saga waits for an operator (`compensation_never_succeeds`)."""
    return FaultPlan(rules=[SHIPMENT_FAILS, REFUND_FAILS.model_copy(update={"rounds": rounds})])
