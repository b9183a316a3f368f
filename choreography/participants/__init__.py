"""Each service's reactions, derived from the saga spec: which events it reacts to, and how.

A step up to the pivot reacts to its triggers (run it, or skip it), to its own ``failed``
(compensate itself first), to the hand-backs that may address it, to the saga's cancel, and to
an operator's command to retry its compensation;
a step after the pivot only to its triggers and to an operator's command to run it again
(`onward`). A service's consumer is filtered on exactly the kinds of its table.
"""

from __future__ import annotations

from collections.abc import Callable

from choreography.bus import Outgoing
from choreography.events import CANCEL_REQUESTED, Routing
from choreography.participants.base import Participant, Participants, Reaction
from choreography.participants.onward import Onward
from choreography.participants.steps import StepReactions
from choreography.versions import Reader
from shared.saga import StepSpec
from shared.services import Domain
from shared.steps import Chain

__all__ = [
    "Participant",
    "Participants",
    "Reaction",
    "kinds_for",
    "participants_for",
    "reactions_for",
]


def participants_for(
    service: str,
    domain: Domain,
    reader: Reader,
    hand_over: Callable[[list[Outgoing | None]], None],
    middleware: Chain = (),
) -> Participants:
    """A service's participant for each definition the reader understands (one consumer)."""
    return Participants(
        service,
        reader,
        {
            ref: Participant(
                service,
                domain,
                reactions_for(service, routing),
                routing=routing,
                hand_over=hand_over,
                middleware=middleware,
                envelopes=reader.envelopes,
            )
            for ref, routing in reader.routings.items()
        },
    )


def subscribed(service: str, reader: Reader) -> tuple[str, ...]:
    """The kinds a service's consumer is filtered on: those of every definition understood."""
    kinds = (k for routing in reader.routings.values() for k in kinds_for(service, routing))
    return tuple(dict.fromkeys(kinds))


def reactions_for(service: str, routing: Routing) -> dict[str, Reaction]:
    """The reaction table of a service: the union of its steps' tables."""
    table: dict[str, Reaction] = {}
    for spec in routing.saga.steps_of(service):
        table.update(_step_table(spec, routing))
    return table


def kinds_for(service: str, routing: Routing) -> tuple[str, ...]:
    """The events a service's consumer is filtered on: exactly those it reacts to."""
    return tuple(reactions_for(service, routing))


def _step_table(spec: StepSpec, routing: Routing) -> dict[str, Reaction]:
    if spec.compensation is None:
        onward = Onward(spec.name)
        runs: dict[str, Reaction] = dict.fromkeys(routing.triggers(spec.name), onward.forward)
        runs[routing.retry_step(spec.name)] = onward.forward
        return runs
    on = StepReactions(spec.name)
    table: dict[str, Reaction] = dict.fromkeys(routing.triggers(spec.name), on.forward)
    table[routing.failed(spec.name)] = on.own_failure
    table.update(dict.fromkeys(routing.handback_sources(spec.name), on.handback))
    table[CANCEL_REQUESTED] = on.cancel
    table[routing.retry_compensation(spec.name)] = on.retry
    return table
