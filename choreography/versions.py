"""How a choreography process meets the events of another release (docs/versioning.md).

A process holds one saga definition, run by the code of that definition's release, and reads
events as the event versioning setting (``SAGA_EVENT_VERSIONING``) says:

- ``strict`` (the default, and what release 1 always did): only events of its own definition,
  in its own release's envelope; anything else is dead-lettered with the reason;
- ``tolerant`` and ``stored-upcast`` (a tolerant reader with an upcaster): every definition it
  understands (its own and the earlier ones it names), each routed by its own definition's
  rules, so a v1 saga finishes as v1 on v2 processes; an older envelope is upcast on read
  (`choreography.events.UPCASTERS`), a newer one read for the fields this release knows; an
  event of a definition it does not understand is handed back (nak) for another instance of
  its consumer group, not dead-lettered. Consumer filters only widen, never narrow;
- ``dual-publish``: each release is a consumer group of its own (durables suffixed ``-r2``)
  reading its own envelope only; a later release writes every event in both envelopes (the
  earlier release's copy for its group), and a group acknowledges the other's copies unread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from choreography.bus import Delivery, Poison, Retry
from choreography.events import LATEST, Event, Routing, upcast
from shared.definition import DefinitionMismatch, DefinitionRef, SagaDefinition
from shared.definitions import definition_of

TOLERANT = ("tolerant", "stored-upcast")
DUAL = "dual-publish"
HAND_BACK_S = 0.5
"""How long an event this process does not understand waits before it is offered again."""
RELEASE_ONE_FIELDS = frozenset(Event.model_fields) - {"detail", "envelope"}
"""What release 1's envelope holds: a tolerant release-1 reader keeps these."""


class NotOurs(Exception):
    """Acknowledged unread: a copy for another release's consumer group (dual publish)."""


@dataclass(frozen=True)
class Reader:
    """What one process reads, and how: its definition, its release, the setting."""

    held: SagaDefinition
    mode: str = "strict"

    @property
    def release(self) -> int:
        return self.held.release

    @property
    def tolerant(self) -> bool:
        return self.mode in TOLERANT

    @property
    def stored_upcast(self) -> bool:
        """Whether the tracker upcasts the views it stored under an earlier release."""
        return self.mode == "stored-upcast"

    @property
    def dual(self) -> bool:
        return self.mode == DUAL

    @cached_property
    def understood(self) -> tuple[SagaDefinition, ...]:
        """The definitions whose sagas this process runs: its own first."""
        if not self.tolerant:
            return (self.held,)
        earlier = [definition_of(ref) for ref in self.held.earlier]
        return (self.held, *(d for d in earlier if d is not None))

    @cached_property
    def routings(self) -> dict[DefinitionRef, Routing]:
        return {d.ref: Routing(d) for d in self.understood}

    @property
    def durable_suffix(self) -> str:
        """A later release's consumer group of its own (dual publish); none otherwise."""
        return f"-r{self.release}" if self.dual and self.release > 1 else ""

    @property
    def envelopes(self) -> tuple[int, ...]:
        """The envelopes every event is written in: the release's own, and with dual
        publishing each earlier one too (oldest first)."""
        if self.dual:
            return tuple(range(1, self.release + 1))
        return (self.release,)

    def routing_of(self, ref: DefinitionRef) -> Routing:
        """The rules a saga of ``ref`` runs by here (DefinitionMismatch if not understood)."""
        found = self.routings.get(ref)
        if found is None:
            raise DefinitionMismatch(ref, self.held.ref)
        return found

    def parse_subject(self, subject: str) -> tuple[str, str] | None:
        """Kind and saga id of a subject of any definition understood here."""
        for routing in self.routings.values():
            parsed = routing.parse_subject(subject)
            if parsed is not None:
                return parsed
        return None

    def decode(self, delivery: Delivery) -> Event:
        """The event in this release's envelope; Poison, Retry (hand it back) or NotOurs."""
        parsed = self.parse_subject(delivery.subject)
        if parsed is None:
            raise Poison(f"not a saga subject: {delivery.subject}")
        state = _state(delivery)
        try:
            ref = DefinitionRef.model_validate(state.get("definition"))
        except ValidationError:
            raise Poison(f"undecodable event on {delivery.subject}: no saga definition") from None
        if ref not in self.routings:  # first: which saga it is decides who may read it at all
            self._not_understood(ref, delivery)
        version = int(state.get("envelope", 1))
        if version != self.release:
            state = self._reshape(state, version, delivery.subject)
        try:
            event = Event.model_validate(state)
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise Poison(f"undecodable event on {delivery.subject}: {problem}") from None
        if (event.kind, event.saga_id) != parsed:
            raise Poison(f"event {event.kind}/{event.saga_id} published on {delivery.subject}")
        return event

    def _reshape(self, state: dict[str, Any], version: int, subject: str) -> dict[str, Any]:
        if self.dual:
            raise NotOurs(f"envelope {version}: another release's copy")
        if not self.tolerant:
            raise Poison(
                f"undecodable event on {subject}: envelope {version}, "
                f"this process reads envelope {self.release}"
            )
        if version < self.release:
            return upcast(state, self.release)
        known = RELEASE_ONE_FIELDS if self.release == 1 else frozenset(Event.model_fields)
        kept = {k: v for k, v in state.items() if k in known}
        return {**kept, "envelope": self.release} if self.release > 1 else kept

    def _not_understood(self, ref: DefinitionRef, delivery: Delivery) -> None:
        mismatch = DefinitionMismatch(ref, self.held.ref)
        if self.dual:
            raise NotOurs(str(mismatch))
        if self.tolerant:
            # Another instance of this consumer group may hold that definition (a rolling
            # upgrade): offer the event again rather than destroy it.
            raise Retry(HAND_BACK_S, f"{delivery.subject}: {mismatch}")
        raise Poison(f"{delivery.subject}: {mismatch}")


def _state(delivery: Delivery) -> dict[str, Any]:
    try:
        state = json.loads(delivery.data)
    except ValueError:
        raise Poison(f"undecodable event on {delivery.subject}: not JSON") from None
    if not isinstance(state, dict):
        raise Poison(f"undecodable event on {delivery.subject}: not an object")
    return state


__all__ = ["DUAL", "LATEST", "TOLERANT", "NotOurs", "Reader"]
