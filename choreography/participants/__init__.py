"""Each service's reactions, derived from the saga spec: which events it reacts to, and how.

A step up to the pivot reacts to its triggers (run it, or skip it), to its own ``failed``
(compensate itself first), to the hand-backs that may address it, to the saga's cancel, and to
an operator's command to retry its compensation;
a step after the pivot only to its triggers and to an operator's command to run it again
(`onward`). A service's consumer is filtered on exactly the kinds of its table.
"""

from __future__ import annotations

from choreography.events import CANCEL_REQUESTED, Routing
from choreography.participants.base import Participant, Reaction
from choreography.participants.onward import Onward
from choreography.participants.steps import StepReactions
from shared.saga import StepSpec

__all__ = ["Participant", "Reaction", "kinds_for", "reactions_for"]


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
