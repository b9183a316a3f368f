"""The saga's SagaPolicy maps onto Temporal RetryPolicies with the very same delays."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orchestration.messages import (
    BUSINESS_FAILURE,
    DUPLICATE_ORDER,
    ORDER_REJECTED,
    STEP_REJECTED,
)
from orchestration.workflows import retry_policy
from shared.contracts import SagaPolicy


def temporal_delay(policy: SagaPolicy, attempt: int) -> float:
    """The delay Temporal's server applies before attempt ``attempt + 1``."""
    retry = retry_policy(policy)
    assert retry.maximum_interval is not None
    delay = retry.initial_interval.total_seconds() * retry.backoff_coefficient ** (attempt - 1)
    return min(retry.maximum_interval.total_seconds(), delay)


@pytest.mark.parametrize(
    "policy",
    [
        SagaPolicy(),
        SagaPolicy(initial_backoff_s=0.05, backoff_factor=3, max_backoff_s=1),
        SagaPolicy(initial_backoff_s=2, max_backoff_s=0.5),
    ],
    ids=["default", "steep", "initial-above-cap"],
)
def test_retry_delays_equal_the_saga_policy_backoff(policy: SagaPolicy) -> None:
    for attempt in range(1, 12):
        assert temporal_delay(policy, attempt) == pytest.approx(policy.backoff(attempt))


def test_forward_steps_retry_forever_and_compensations_within_their_budget() -> None:
    policy = SagaPolicy(compensation_attempts=4)

    assert retry_policy(policy).maximum_attempts == 0
    assert retry_policy(policy, policy.compensation_attempts).maximum_attempts == 4


def test_business_failures_are_never_retried() -> None:
    retry = retry_policy(SagaPolicy())

    assert set(retry.non_retryable_error_types or []) == {
        BUSINESS_FAILURE,
        STEP_REJECTED,
        DUPLICATE_ORDER,
        ORDER_REJECTED,
    }
    assert retry.initial_interval == timedelta(seconds=0.1)
