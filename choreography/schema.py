"""Every table the choreography keeps in a service's own store, as migrations of that store.

They live beside the service's tables so the inbox, outbox and fence rows commit in the step's
own transaction; the runtime hands them to `Domain` before any store opens.
"""

from __future__ import annotations

from collections.abc import Iterable

from choreography import inbox, outbox, projection
from choreography.participants.base import FENCE_MIGRATIONS
from shared.contracts import ServiceName
from shared.store import Migration

PARTICIPANT: tuple[Migration, ...] = (*outbox.MIGRATIONS, *inbox.MIGRATIONS, *FENCE_MIGRATIONS)
"""What every participant's store holds: outbox, inbox and fences."""


def migrations_for(services: Iterable[str]) -> dict[str, tuple[Migration, ...]]:
    """Per service; the orders store also holds the tracker's projection."""
    return {
        service: (*PARTICIPANT, *(projection.MIGRATIONS if service == ServiceName.ORDERS else ()))
        for service in services
    }


MIGRATIONS: dict[str, tuple[Migration, ...]] = migrations_for(ServiceName)
"""The order saga's services."""
