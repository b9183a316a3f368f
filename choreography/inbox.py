"""Inbox: the ids of consumed events, written in the same transaction as their effect.

A redelivered event whose id is already here changed the store once already: the participant
acknowledges it and moves on. Written inside the step's transaction (the services' ``within``
hook), so "effect happened" and "event consumed" can never disagree.
"""

from __future__ import annotations

import time

from shared.store import Migration, Store, Tx, migrations

MIGRATIONS: tuple[Migration, ...] = migrations(
    "inbox",
    """
    CREATE TABLE inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )
    """,
)


async def seen(store: Store, consumer: str, event_id: str) -> bool:
    """Whether this consumer already committed the effect of that event."""
    rows = await store.query(
        "SELECT 1 AS one FROM inbox WHERE consumer = ? AND event_id = ?", (consumer, event_id)
    )
    return bool(rows)


def record(tx: Tx, consumer: str, event_id: str, subject: str) -> bool:
    """Mark the event consumed in the caller's transaction; False if it already was."""
    inserted = tx.execute(
        "INSERT INTO inbox (consumer, event_id, subject, at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (consumer, event_id, subject, time.time()),
    )
    return bool(inserted)


async def count(store: Store, consumer: str) -> int:
    rows = await store.query("SELECT count(*) AS n FROM inbox WHERE consumer = ?", (consumer,))
    return int(rows[0]["n"])
