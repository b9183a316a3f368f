"""Failed attempts of a forward step, kept by the step's service: what a fence answers with.

A forward step that fails for a technical reason (an error, an attempt timeout) is delivered
again later; nothing else of the attempt is written. So when a cancel fences a step whose
attempts keep failing or hanging, the service knows how many attempts it made only from this
record, written on the failure path alone (a step that succeeds first time writes nothing
here), in the service's own store: a restarted process knows it too.
"""

from __future__ import annotations

import time

from shared.store import Migration, Store, Tx, migrations

MIGRATIONS: tuple[Migration, ...] = migrations(
    "attempts",
    """
    CREATE TABLE attempts (
        saga_id TEXT NOT NULL,
        step TEXT NOT NULL,
        failed INTEGER NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (saga_id, step)
    )
    """,
)


async def note_failed(store: Store, saga_id: str, step: str, attempt: int) -> None:
    """Attempt ``attempt`` of the step failed and will be delivered again."""

    def work(tx: Tx) -> None:
        tx.execute(
            "INSERT INTO attempts (saga_id, step, failed, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (saga_id, step) DO UPDATE"
            f" SET failed = {tx.dialect.greatest('attempts.failed', 'excluded.failed')},"
            " at = excluded.at",
            (saga_id, step, attempt, time.time()),
        )

    await store.run(work, key=saga_id)


def made(tx: Tx, saga_id: str, step: str) -> int:
    """How many attempts the step has made so far: the failed ones and the one after them."""
    row = tx.fetchone("SELECT failed FROM attempts WHERE saga_id = ? AND step = ?", (saga_id, step))
    return 1 if row is None else int(row["failed"]) + 1
