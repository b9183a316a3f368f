"""How a tracker reads and writes its stored views across releases (docs/versioning.md).

Release 1 stored a view in shape 1 (the facts of one saga, decided by the tracker's one
definition). Release 2 stores shape 2: the definition the saga runs and what each step
reported, so a tracker that understands several definitions decides each saga by its own
steps. Which shape a tracker writes is its release's; how it reads another shape is the
event versioning setting (`choreography.versions.Reader`):

- ``strict``: its own shape only (release 1's model forbids unknown fields; a view without
  shape 2's definition is decided by the tracker's own definition);
- ``tolerant`` and ``dual-publish``: what it knows of any shape — unknown fields ignored,
  missing ones defaulted: a version-1 saga's view, read by release 2, is decided by release
  2's definition;
- ``stored-upcast``: a view of an older shape is upcast on read (`upcast_view_v1_v2`): its
  definition from the saga's first event, which the tracker stored beside it, and the
  charge's report derived from the order, as the events' upcaster does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from choreography.events import Event, Routing
from choreography.projection import SHAPE_2_FIELDS, SagaView
from choreography.versions import Reader
from shared.contracts import OrderRequest, StepName, StepStatus
from shared.definition import DefinitionRef
from shared.saga import SagaSpec
from shared.services.payment_v2 import money


class UnreadableView(ValueError):
    """A stored view this tracker's code cannot read (a strict reader of another shape)."""


def upcast_view_v1_v2(state: dict[str, Any], placed: dict[str, Any]) -> dict[str, Any]:
    """A shape-1 view as release 2 stores it: the saga's definition (from its first event)
    and the charge's report (a charge takes the order's total)."""
    reports: dict[str, dict[str, Any]] = {}
    charge = (state.get("steps") or {}).get(StepName.CHARGE_PAYMENT.value) or {}
    if charge.get("result") == StepStatus.DONE.value:
        total = OrderRequest.model_validate(placed["order"]).total_cents
        reports[StepName.CHARGE_PAYMENT.value] = {"amount": money(total)}
    return {**state, "definition": placed.get("definition"), "reports": reports, "shape": 2}


@dataclass(frozen=True)
class Views:
    """One tracker's reading and writing of views, and the rules each saga is decided by."""

    reader: Reader

    @property
    def shape(self) -> int:
        return self.reader.release

    @property
    def own(self) -> Routing:
        return self.reader.routings[self.reader.held.ref]

    def load(self, text: str, placed: str | None = None) -> SagaView:
        """A stored view as this release reads it (``placed``: the saga's first event, for
        the upcast); UnreadableView when a strict reader meets another shape."""
        state = json.loads(text)
        shape = int(state.get("shape", 1))
        if shape < self.shape and self.reader.stored_upcast and placed is not None:
            state = upcast_view_v1_v2(state, json.loads(placed))
        elif shape > self.shape and not (self.reader.tolerant or self.reader.dual):
            # Release 1's model forbids what it does not know: a strict old tracker fails.
            raise UnreadableView(
                f"view of saga {state.get('saga_id')} is in shape {shape}; this tracker "
                f"reads shape {self.shape}"
            )
        if self.shape == 1:
            state = {k: v for k, v in state.items() if k not in SHAPE_2_FIELDS}
        try:
            view = SagaView.model_validate(state)
        except ValidationError as error:
            raise UnreadableView(f"view of saga {state.get('saga_id')}: {error}") from None
        return view.model_copy(update={"shape": self.shape})

    def dump(self, view: SagaView) -> str:
        return view.model_copy(update={"shape": self.shape}).model_dump_json()

    def routing_of(self, view: SagaView) -> Routing:
        """The rules a saga is decided by: its own definition's when the view names one this
        tracker understands, else the tracker's own."""
        if view.definition is not None:
            found = self.reader.routings.get(view.definition)
            if found is not None:
                return found
        return self.own

    def spec_of(self, view: SagaView) -> SagaSpec:
        return self.routing_of(view).saga

    def routing_for(self, event: Event) -> Routing:
        """The rules an event is folded by: its saga's definition's, if understood."""
        return self.reader.routings.get(event.definition, self.own)

    def understands(self, ref: DefinitionRef) -> bool:
        return ref in self.reader.routings
