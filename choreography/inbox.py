"""Inbox: the ids of consumed events, written in the same transaction as their effect.

A redelivered event whose id is already here changed the store once already: the participant
acknowledges it and moves on. Written inside the step's transaction (the services' ``within``
hook), so "effect happened" and "event consumed" can never disagree.
"""

from __future__ import annotations

import time

from shared.store import SqliteStore, Tx

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        subject TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (consumer, event_id)
    )""",
)


async def ensure_schema(store: SqliteStore) -> None:
    async with store.transaction() as tx:
        for statement in SCHEMA:
            await tx.execute(statement)


async def seen(store: SqliteStore, consumer: str, event_id: str) -> bool:
    """Whether this consumer already committed the effect of that event."""
    rows = await store.read(
        "SELECT 1 FROM inbox WHERE consumer = ? AND event_id = ?", (consumer, event_id)
    )
    return bool(rows)


async def record(tx: Tx, consumer: str, event_id: str, subject: str) -> bool:
    """Mark the event consumed in the caller's transaction; False if it already was."""
    inserted = await tx.execute(
        "INSERT OR IGNORE INTO inbox (consumer, event_id, subject, at) VALUES (?, ?, ?, ?)",
        (consumer, event_id, subject, time.time()),
    )
    return bool(inserted)


async def count(store: SqliteStore, consumer: str) -> int:
    rows = await store.read("SELECT count(*) FROM inbox WHERE consumer = ?", (consumer,))
    return int(rows[0][0])
