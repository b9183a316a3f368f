"""Admission: what the services check when an order arrives, before anything is reserved.

A saga's order and policy come in a message (the choreography's place command, the
workflow's input) that anyone able to send one could have written. So the services that
receive it — the orders service's desk, the workflow's first activity — judge it again
against the shop's records (shared/catalogue.py: known customer, known products, the
catalogue's prices) and against the deployment's limits on a policy (how long a saga may run
and retry), whatever the sender checked. A client's own check is the early, friendly error;
this one decides. An order it refuses ends its saga REJECTED with the reason, nothing done.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.catalogue import admit
from shared.contracts import OrderRequest, Reason, SagaPolicy
from shared.errors import Inadmissible
from shared.services import Domain
from shared.settings import Settings


@dataclass(frozen=True)
class PolicyLimits:
    """The longest a deployment lets a saga run and retry, whatever its message asks
    (``SAGA_LIMIT_*``): a policy beyond one of them is refused, not trimmed."""

    deadline_s: float = 600.0
    attempt_timeout_s: float = 300.0
    backoff_s: float = 60.0
    """Bounds a policy's initial and longest backoff."""
    compensation_attempts: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> PolicyLimits:
        return cls(
            deadline_s=settings.limit_deadline_s,
            attempt_timeout_s=settings.limit_attempt_timeout_s,
            backoff_s=settings.limit_backoff_s,
            compensation_attempts=settings.limit_compensation_attempts,
        )

    def check(self, policy: SagaPolicy) -> None:
        """Raise Inadmissible naming the first field of ``policy`` beyond these limits."""
        bounds = (
            ("deadline_s", policy.deadline_s, self.deadline_s, "DEADLINE_S"),
            (
                "attempt_timeout_s",
                policy.attempt_timeout_s,
                self.attempt_timeout_s,
                "ATTEMPT_TIMEOUT_S",
            ),
            ("initial_backoff_s", policy.initial_backoff_s, self.backoff_s, "BACKOFF_S"),
            ("max_backoff_s", policy.max_backoff_s, self.backoff_s, "BACKOFF_S"),
            (
                "compensation_attempts",
                policy.compensation_attempts,
                self.compensation_attempts,
                "COMPENSATION_ATTEMPTS",
            ),
        )
        for field, value, limit, variable in bounds:
            if value > limit:
                raise Inadmissible(
                    Reason.POLICY_OUT_OF_BOUNDS,
                    f"policy.{field}: {value:g} is beyond this deployment's limit {limit:g}"
                    f" (SAGA_LIMIT_{variable})",
                )


class Admission:
    """The services' own check of an arriving order: its policy against the deployment's
    limits, then the order against the live catalogue and customer records."""

    def __init__(self, domain: Domain, limits: PolicyLimits) -> None:
        self.domain = domain
        self.limits = limits

    async def check(self, order: OrderRequest, policy: SagaPolicy | None) -> None:
        """Raise Inadmissible for an order (or policy) that must not start a saga."""
        if policy is not None:
            self.limits.check(policy)
        await admit(self.domain, order)

    async def judge(self, order: OrderRequest, policy: SagaPolicy | None) -> Inadmissible | None:
        """The refusal, or None when the order may start its saga (a failure to read the
        records raises: the caller retries, it never admits by default)."""
        try:
            await self.check(order, policy)
        except Inadmissible as refused:
            return refused
        return None


__all__ = ["Admission", "PolicyLimits"]
