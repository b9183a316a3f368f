"""The tracker's stored views across releases: what each setting reads, and how a version-1
saga placed by release 1's tracker is decided by release 2's (docs/versioning.md)."""

from __future__ import annotations

import json

import pytest

from choreography.events import Event
from choreography.projection import SagaView, StepFacts
from choreography.schema import migrations_for
from choreography.tracker import Tracker
from choreography.versions import Reader
from choreography.views import UnreadableView, Views
from shared.contracts import SagaStatus, StepStatus
from shared.definitions import ORDERS_V1, definition_named
from shared.seed import seed
from shared.services import Domain
from shared.store.memory import memory_stores
from tests.unit.choreography.test_recorded_v1_events import recorded

V2 = definition_named("v2")


def shape_1_view() -> str:
    """A view as release 1 stored it: the charge done."""
    view = SagaView(
        saga_id="s-1",
        order_id="o-1",
        steps={"charge_payment": StepFacts(started=True, result=StepStatus.DONE, attempts=1)},
    )
    return Views(Reader(ORDERS_V1)).dump(view)


def placed_body() -> str:
    return recorded("happy_path")[0].body


def test_release_1_stores_its_views_as_it_always_did() -> None:
    stored = json.loads(shape_1_view())
    assert not {"definition", "reports", "shape"} & set(stored)


def test_stored_upcast_gives_a_shape_1_view_its_definition_and_the_charge_in_money() -> None:
    view = Views(Reader(V2, "stored-upcast")).load(shape_1_view(), placed_body())
    assert view.definition == ORDERS_V1.ref and view.shape == 2
    assert view.reports == {"charge_payment": {"amount": {"value": "39.98", "currency": "USD"}}}


def test_a_tolerant_v2_tracker_decides_a_shape_1_view_by_its_own_definition() -> None:
    views = Views(Reader(V2, "tolerant"))
    view = views.load(shape_1_view(), placed_body())
    assert view.definition is None and views.spec_of(view) is V2.spec


def test_a_strict_release_1_tracker_cannot_read_a_view_release_2_stored() -> None:
    stored = Views(Reader(V2, "strict")).dump(SagaView(saga_id="s-1", order_id="o-1"))
    with pytest.raises(UnreadableView, match="shape 2; this tracker reads shape 1"):
        Views(Reader(ORDERS_V1, "strict")).load(stored)
    tolerant = Views(Reader(ORDERS_V1, "tolerant")).load(stored)
    assert not {"definition", "reports"} & set(json.loads(Views(Reader(ORDERS_V1)).dump(tolerant)))


@pytest.mark.parametrize(("mode", "steps_listed"), [("stored-upcast", 0), ("tolerant", 1)])
async def test_a_v1_saga_placed_by_release_1_ends_right_under_release_2s_tracker(
    mode: str, steps_listed: int
) -> None:
    """The payment-declined saga of the recorded fixtures: placed (and its view stored) by
    release 1's tracker, every later event folded by release 2's. It compensates either way;
    only the stored view's upcast keeps version 2's fraud check out of its outcome."""
    messages = recorded("payment_declined")
    domain = Domain(memory_stores(), V2, extra_migrations=migrations_for(V2.services))
    await domain.open()
    await seed(domain)
    v1 = Tracker(domain.orders, routing=Views(Reader(ORDERS_V1)).own)
    first = Event.model_validate_json(messages[0].body)
    await domain.orders.place(
        first.saga_id, first.order, within=lambda tx: v1.record_start(tx, first, None)
    )
    v2 = Tracker(domain.orders, routing=Views(Reader(V2)).own, reader=Reader(V2, mode))

    await v2.project([m.delivery() for m in messages])
    outcome = await v2.describe(first.saga_id)
    await domain.close()

    assert outcome.status is SagaStatus.COMPENSATED and outcome.reason == "payment_declined"
    assert [s.step for s in outcome.steps].count("fraud_check") == steps_listed
