"""SagaDefinition: the saga spec, the services that run it, and its identity (version, digest).

Every process builds exactly one definition at its composition root (from the settings:
``SAGA_DEFINITION``, see `shared/definitions.py`) and passes it down: the services it opens,
the choreography's routing and process kinds, the workflow's steps, the CLI's choices, `up`,
the monitor's steps, the harness's checks of its inputs and the invariants all derive from
it. Workflow inputs and events carry its `DefinitionRef`; a process holding another
definition refuses them, naming both.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from pydantic import BaseModel, ConfigDict

from shared.saga import SagaSpec
from shared.services import ServiceDef, StatePart


class DefinitionRef(BaseModel):
    """Which definition a workflow or an event was made by: name, version and digest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    digest: str

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.digest})"


REFUSAL_MARK = "made by saga definition"
"""How every refusal for a definition starts: what the monitor looks for in a failure."""


class DefinitionMismatch(RuntimeError):
    """A workflow or event of a definition this process does not hold."""

    def __init__(self, got: DefinitionRef, held: DefinitionRef) -> None:
        super().__init__(f"{REFUSAL_MARK} {got}, but this process holds {held}")
        self.got = got
        self.held = held


@dataclass(frozen=True)
class SagaDefinition:
    """The saga as one process runs it (see the module docstring)."""

    name: str
    version: str
    spec: SagaSpec
    services: Mapping[str, ServiceDef]
    title: str = ""
    earlier: tuple[DefinitionRef, ...] = field(default=())
    """Definitions whose workflows and events this one still understands (versioning)."""
    release: int = 1
    """The release of the code that runs it: the shapes its processes write (the events'
    envelope) and the workflow code its workers run (docs/versioning.md). Not in the digest:
    it says which code runs the saga, not how the saga runs."""

    def __post_init__(self) -> None:
        missing = [name for name in self.spec.services if name not in self.services]
        if missing:
            raise ValueError(f"definition {self.name}: no service for {', '.join(missing)}")

    @cached_property
    def digest(self) -> str:
        """A short hash of everything that decides how a saga of this definition runs."""
        document = {
            "name": self.name,
            "version": self.version,
            "spec": json.loads(self.spec.model_dump_json()),
            "services": sorted(self.services),
        }
        canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @cached_property
    def ref(self) -> DefinitionRef:
        return DefinitionRef(name=self.name, version=self.version, digest=self.digest)

    def understands(self, ref: DefinitionRef) -> bool:
        """Whether a workflow or event made by ``ref`` can be handled here."""
        return ref == self.ref or ref in self.earlier

    def check(self, ref: DefinitionRef) -> None:
        """Raise DefinitionMismatch unless ``ref`` is understood here."""
        if not self.understands(ref):
            raise DefinitionMismatch(ref, self.ref)

    @cached_property
    def state_parts(self) -> dict[str, StatePart]:
        """The business state each service beyond the order saga's five contributes."""
        return {name: d.state for name, d in self.services.items() if d.state is not None}

    @property
    def steps(self) -> tuple[str, ...]:
        """Every forward step and compensation, forward steps first (CLI and monitor choices)."""
        return (*self.spec.forward_steps, *self.spec.compensations)
