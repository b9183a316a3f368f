"""The failure taxonomy both variants map onto their engines' retry rules."""

from __future__ import annotations

from typing import Any

from shared.contracts import ReasonId


class SagaError(Exception):
    """Base of every failure a step can raise."""


class BusinessFailure(SagaError):
    """A rule said no (out of stock, declined ...): never retried, the saga compensates.

    ``detail`` is the refusal's record (what the service read to say no), kept with it.
    """

    def __init__(
        self,
        step: str,
        reason: ReasonId | None,
        message: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.reason = reason
        self.message = message
        self.detail: dict[str, Any] = detail or {}


class StepRejected(BusinessFailure):
    """A forward step arrived after its compensation: the tombstone refuses it."""


class TransientFailure(SagaError):
    """A technical failure (timeout, unavailable): retried with backoff."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


class InvalidOrder(ValueError):
    """An order that must not start a saga; the message names the field and the fix."""


class DuplicateOrder(InvalidOrder):
    """An order id is placed once: another saga carries it already (nothing was changed)."""

    def __init__(self, order_id: str, saga_id: str) -> None:
        super().__init__(f"order_id: order {order_id!r} is placed already (saga {saga_id})")
        self.order_id = order_id
        self.saga_id = saga_id


class Inadmissible(InvalidOrder):
    """An order the shop's records or the deployment's limits contradict; ``reason`` names
    why (`Reason.PRICE_MISMATCH` ...), the message the field and the expected value.

    Refused up front by a client that checks; a saga whose order reaches the services
    anyway ends REJECTED for this reason, with nothing done.
    """

    def __init__(self, reason: ReasonId, message: str) -> None:
        super().__init__(message)
        self.reason = reason
