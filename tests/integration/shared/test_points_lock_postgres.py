"""The points lock on Postgres, where each statement of a transaction reads what was committed
when it began (READ COMMITTED): a deduction must not read the balance before a restore and the
holds after it.

A restore is held open in a session of the test's own (its row written, not committed); a
deduction that needs those points then waits for it — seen waiting in ``pg_stat_activity`` —
and, once it commits, takes the points it gave back. Before the account row was locked, the
deduction read the balance without them and answered at once (a lock wait on the restoring
saga's hold; with the commit landing between its two reads, a refusal: a dirty read with the
lock on, seen in a loaded run of the anomaly lab's Postgres cells).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
import pytest_asyncio

from harness.compare.scenarios import order as scenario_order
from shared.contracts import OrderRequest, StepRequest, StepStatus
from shared.definitions import ORDERS_V1
from shared.postgres_server import EmbeddedPostgres
from shared.seed import seed
from shared.services import Domain
from shared.store.base import StoreFactory
from shared.store.postgres import PostgresStore

WAIT_S = 30.0
"""A hang guard for something that happens at once when the code is right."""


def order(order_id: str) -> OrderRequest:
    return scenario_order(order_id, customer="bob", items={"widget": 1}, points=100)


@pytest_asyncio.fixture
async def domain(postgres_store_factory: StoreFactory) -> AsyncIterator[Domain]:
    opened = await Domain(postgres_store_factory, ORDERS_V1).open()
    await seed(opened)  # bob has 100 points
    yield opened
    await opened.close()


async def until_a_session_waits_on_a_lock(server: EmbeddedPostgres, application: str) -> bool:
    """Return once a session of the store named by ``application`` waits on a lock."""
    async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as conn:
        async with asyncio.timeout(WAIT_S):
            while True:
                found = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = %s AND wait_event_type = 'Lock'",
                    (application,),
                )
                if int((await found.fetchone() or [0])[0]):
                    return True
                await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_deduction_waits_for_a_restore_in_flight_and_takes_the_points_it_gives_back(
    domain: Domain, postgres_server: EmbeddedPostgres
) -> None:
    a, b = order("pl-a"), order("pl-b")
    for placed in (a, b):
        await domain.orders.place(placed.order_id, placed)
    await domain.points.deduct_points(StepRequest(saga_id=a.order_id, order=a, attempt=1))
    store = domain.points.store
    assert isinstance(store, PostgresStore)

    # Saga A gives its points back in a transaction that has written and not yet committed.
    restore: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(
        postgres_server.url, options=f"-c search_path={store.schema}"
    )
    async with restore:
        await restore.execute(
            "UPDATE accounts SET balance = balance + 100 WHERE customer_id = 'bob'"
        )
        await restore.execute("DELETE FROM holds WHERE saga_id = %s", (a.order_id,))
        deduction = asyncio.create_task(
            domain.points.deduct_points(StepRequest(saga_id=b.order_id, order=b, attempt=1))
        )
        waiting = asyncio.create_task(
            until_a_session_waits_on_a_lock(postgres_server, f"saga-{store.name}")
        )
        await asyncio.wait({deduction, waiting}, return_when=asyncio.FIRST_COMPLETED)
        answered_before_the_commit = deduction.done()
        waiting.cancel()
        await restore.commit()

    assert not answered_before_the_commit  # it waited for the restore
    result = await asyncio.wait_for(deduction, WAIT_S)
    assert result.status is StepStatus.DONE
    balances = await domain.points.store.query(
        "SELECT balance FROM accounts WHERE customer_id = 'bob'"
    )
    assert [int(r["balance"]) for r in balances] == [0]
