"""Release 1's recorded events through today's consumers (docs/versioning.md).

``tests/integration/choreography/events/v1/`` holds every message release 1 published for six
sagas (happy, points skipped, payment declined, shipment failed, cancelled during the payment,
a refund an operator retried), recorded with ``record_events.py`` on an export of release 1's
commit. Release 2's processes must read each one: a tolerant reader upcasts it and routes it
by v1's rules (handled, never dead-lettered); a strict one dead-letters it, naming why.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from choreography.bus import Delivery, Outgoing, Poison, Retry
from choreography.events import Event
from choreography.participants import participants_for, subscribed
from choreography.schema import migrations_for
from choreography.versions import Reader
from shared.definitions import ORDERS_V1, definition_named
from shared.seed import seed
from shared.services import Domain
from shared.store.memory import memory_stores

V2 = definition_named("v2")
RECORDED = Path(__file__).parents[2] / "integration" / "choreography" / "events" / "v1"
SAGAS = sorted(p.stem for p in RECORDED.glob("*.jsonl"))


@dataclass(frozen=True)
class Recorded:
    saga: str
    subject: str
    body: str

    def delivery(self) -> Delivery:
        return Delivery(
            subject=self.subject, data=self.body.encode(), headers={}, num_delivered=1, stream_seq=0
        )


def recorded(saga: str) -> list[Recorded]:
    lines = (RECORDED / f"{saga}.jsonl").read_text(encoding="utf-8").splitlines()
    return [Recorded(saga, **json.loads(line)) for line in lines if line]


def every_recorded() -> Iterator[Recorded]:
    for saga in SAGAS:
        yield from recorded(saga)


def test_the_fixtures_hold_every_kind_of_v1_event_a_saga_may_publish() -> None:
    kinds = {r.subject.split(".", 1)[1].rsplit(".", 1)[0] for r in every_recorded()}
    assert SAGAS == [
        "cancelled_during_payment",
        "happy_path",
        "payment_declined",
        "points_skipped",
        "refund_retried_by_an_operator",
        "shipment_failed",
    ]
    assert {"order.placed", "order.cancel_requested", "order.completed"} <= kinds
    assert {"payment.charged", "payment.failed", "payment.refused", "points.skipped"} <= kinds
    assert {"payment.compensation_failed", "payment.retry_compensation"} <= kinds
    assert all(
        json.loads(r.body)["definition"] == ORDERS_V1.ref.model_dump() for r in every_recorded()
    )


def test_release_1_still_writes_its_envelope_byte_for_byte() -> None:
    for message in every_recorded():
        assert Event.model_validate_json(message.body).model_dump_json() == message.body


@pytest.mark.parametrize("mode", ["tolerant", "stored-upcast"])
def test_a_tolerant_v2_reader_upcasts_every_v1_event(mode: str) -> None:
    reader = Reader(V2, mode)
    for message in every_recorded():
        event = reader.decode(message.delivery())
        assert event.envelope == 2 and event.definition == ORDERS_V1.ref
        if event.kind == "payment.charged":
            total = event.order.total_cents
            assert event.detail == {"amount": {"value": f"{total / 100:.2f}", "currency": "USD"}}
        else:
            assert event.detail == {}


def test_a_strict_v2_reader_dead_letters_every_v1_event_naming_why() -> None:
    reader = Reader(V2, "strict")
    for message in every_recorded():
        with pytest.raises(Poison, match=r"made by saga definition orders v1 .* holds orders v2"):
            reader.decode(message.delivery())


@pytest.mark.parametrize("saga", SAGAS)
async def test_every_v1_event_is_handled_by_the_v2_consumers_that_receive_it(saga: str) -> None:
    """Fed in order to every v2 service whose consumer is filtered on it, none is
    dead-lettered (a retry, a step's backoff, is fine: the broker would offer it again); the
    saga runs by v1's rules — the fraud service, which receives ``inventory.reserved``,
    leaves it — and what the v2 processes write is in envelope 2, still a v1 saga."""
    reader = Reader(V2, "tolerant")
    domain = Domain(memory_stores(), V2, extra_migrations=migrations_for(V2.services))
    await domain.open()
    await seed(domain)
    out: list[Outgoing | None] = []
    consumers = {s: participants_for(s, domain, reader, out.extend) for s in V2.services}
    readers = []
    for message in recorded(saga):
        kind = message.subject.split(".", 1)[1].rsplit(".", 1)[0]
        for service, participants in consumers.items():
            if kind in subscribed(service, reader):
                readers.append(service)
                with contextlib.suppress(Retry):
                    await participants.handle(message.delivery())
    clearances = await domain.services["fraud"].store.query("SELECT * FROM clearances")
    await domain.close()

    written = [Event.model_validate_json(row.body) for row in out if row is not None]
    assert "fraud" in readers and clearances == []
    assert written and all(e.envelope == 2 and e.definition == ORDERS_V1.ref for e in written)
