"""Every table the choreography keeps in a service's own store, as migrations of that store.

They live beside the service's tables so the inbox and outbox rows commit in the step's own
transaction; the runtime hands them to `Domain` before any store opens.
"""

from __future__ import annotations

from collections.abc import Iterable

from choreography import attempts, inbox, outbox, projection
from shared.contracts import ServiceName
from shared.store import Migration, migrations

FENCES: tuple[Migration, ...] = migrations(
    "fences",
    """
    CREATE TABLE fences (
        saga_id TEXT PRIMARY KEY,
        reason TEXT,
        handed_back INTEGER NOT NULL DEFAULT 0,
        at DOUBLE PRECISION NOT NULL
    )
    """,
    "DROP TABLE fences",
)
"""Gone since version 2: the cancel protocol keeps its tombstones in each service's step log."""

PARTICIPANT: tuple[Migration, ...] = (
    *outbox.MIGRATIONS,
    *inbox.MIGRATIONS,
    *FENCES,
    *attempts.MIGRATIONS,
)
"""What every participant's store holds: outbox, inbox and its steps' failed attempts."""


def migrations_for(services: Iterable[str]) -> dict[str, tuple[Migration, ...]]:
    """Per service; the orders store also holds the tracker's projection."""
    return {
        service: (*PARTICIPANT, *(projection.MIGRATIONS if service == ServiceName.ORDERS else ()))
        for service in services
    }


MIGRATIONS: dict[str, tuple[Migration, ...]] = migrations_for(ServiceName)
"""The order saga's services."""
