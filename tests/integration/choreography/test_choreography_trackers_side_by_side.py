"""Two trackers folding the same sagas at once, as during a rolling upgrade (docs/versioning.md):
both releases' trackers read one durable, so one saga's events are folded by both, each in
transactions of its own on its own connections. No fold may overwrite another's: on Postgres
a batch locks the views it reads (``FOR UPDATE``); SQLite has one writer at a time.
"""

from __future__ import annotations

import asyncio

from choreography.bus import Delivery
from choreography.events import Event, Routing
from choreography.schema import migrations_for
from choreography.tracker import Tracker
from shared.definitions import ORDERS_V1
from shared.services import Domain
from shared.store.base import StoreFactory
from tests.unit.choreography.test_recorded_v1_events import recorded

SAGAS = 25


def renamed(body: str, number: int) -> Event:
    """A recorded v1 event of saga ``v1-happy``, as the event of saga number ``number``."""
    event = Event.model_validate_json(body)
    saga_id = f"{event.saga_id}-{number}"
    order = event.order.model_copy(update={"order_id": saga_id})
    event_id = event.event_id.replace(event.saga_id, saga_id)
    return event.model_copy(update={"saga_id": saga_id, "order": order, "event_id": event_id})


def delivery(event: Event) -> Delivery:
    return Delivery(
        subject=event.subject,
        data=event.model_dump_json().encode(),
        headers={},
        num_delivered=1,
        stream_seq=0,
    )


async def test_two_trackers_folding_one_sagas_events_at_once_lose_none_of_them(
    store_factory: StoreFactory,
) -> None:
    placed, reserved, charged, *_ = [m.body for m in recorded("happy_path")]
    domains = [
        Domain(store_factory, ORDERS_V1, extra_migrations=migrations_for(ORDERS_V1.services))
        for _ in range(2)
    ]
    for domain in domains:
        await domain.open()
    first, second = (Tracker(d.orders, routing=Routing(ORDERS_V1)) for d in domains)
    try:
        for number in range(SAGAS):
            start = renamed(placed, number)
            await domains[0].orders.place(
                start.saga_id,
                start.order,
                within=lambda tx, start=start: first.record_start(tx, start, None),  # type: ignore[misc]
            )

        await asyncio.gather(
            *(first.project([delivery(renamed(reserved, n))]) for n in range(SAGAS)),
            *(second.project([delivery(renamed(charged, n))]) for n in range(SAGAS)),
        )
        views = [await first.view(renamed(placed, n).saga_id) for n in range(SAGAS)]
    finally:
        for domain in domains:
            await domain.close()

    done = {"reserve_inventory", "charge_payment"}
    lost = [v.saga_id for v in views if {s for s, f in v.steps.items() if f.result} != done]
    assert lost == []
