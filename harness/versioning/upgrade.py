"""Deploy another release of the saga on a running deployment: a swap, or a rolling upgrade.

- **swap**: every process of the old release stops (SIGTERM: a clean stop), then the new
  release's processes start — the same kinds, and any the new definition adds (its fraud
  service). In between nothing runs.
- **rolling**: the new release's processes start beside the old ones (kinds suffixed with the
  release, ``payment-v2``); new sagas go to the new release from then on; once the old release
  has drained — no saga it started is still open, or the window ran out — its processes stop.

Either way the deployment runs the new definition afterwards (the topology says so), and with
Worker Versioning (``pinned``, ``auto-upgrade``) the new workers' version is made current
once they poll — the operator's step, done here as an operator would, and timed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from choreography.host import kinds_of_process
from harness.deploy import control
from harness.deploy.deployment import CHOREOGRAPHY, ORCHESTRATION
from harness.deploy.topology import Topology
from orchestration.client import connect
from orchestration.versioning import build_id, set_current, versioned
from shared.definition import SagaDefinition
from shared.definitions import definition_named
from shared.settings import EventVersioning, WorkflowVersioning
from shared.validation import InvalidInput

Strategy = Literal["swap", "rolling"]
STRATEGIES: tuple[Strategy, ...] = ("swap", "rolling")
WORKFLOW_ARMS: tuple[WorkflowVersioning, ...] = ("none", "patched", "pinned", "auto-upgrade")
EVENT_ARMS: tuple[EventVersioning, ...] = ("strict", "tolerant", "stored-upcast", "dual-publish")
DEFINITION = "SAGA_DEFINITION"
LOGINS = "SAGA_NATS_LOGINS_DIR"
WORKFLOW = "SAGA_WORKFLOW_VERSIONING"
EVENTS = "SAGA_EVENT_VERSIONING"
TASK_QUEUE = "SAGA_TEMPORAL_TASK_QUEUE"
SPAWN_WAIT_S = 120.0

Progress = Callable[[str], None]
Drain = Callable[[], Awaitable[None]]


class Member(BaseModel):
    """A process of the deployment, as the supervisor's ``members`` answer describes it."""

    model_config = ConfigDict(frozen=True)

    kind: str
    variant: str
    args: list[str]
    env: dict[str, str] = Field(default_factory=dict)

    def definition(self, default: str) -> str:
        return self.env.get(DEFINITION, default)


class UpgradeLog(BaseModel):
    """What an upgrade did, and when (epoch seconds)."""

    model_config = ConfigDict(frozen=True)

    strategy: Strategy
    to: str
    started_at: float
    retired: list[str] = Field(default_factory=list)
    spawned: list[str] = Field(default_factory=list)
    new_release_at: float | None = None
    """When every process of the new release was ready (and its version current)."""
    current_version_s: float | None = None
    """Seconds until the new worker version was current everywhere (Worker Versioning)."""
    current_version_propagated: bool | None = None
    """Whether the deployment reported the routing change complete in time."""
    current_version_routed: bool | None = None
    """Whether new tasks routed to the new version in time (reported by the deployment, or
    seen on its task queue: `orchestration.versioning.until_routed`)."""
    drained_at: float | None = None
    """Rolling: when the old release's processes were stopped."""
    finished_at: float | None = None


@dataclass(frozen=True)
class Arms:
    """The versioning settings the new release's processes run with (None: unchanged)."""

    workflow: WorkflowVersioning | None = None
    events: EventVersioning | None = None

    @classmethod
    def parse(cls, names: list[str]) -> Arms:
        """``--arm`` values: any of the workflow and event versioning settings."""
        workflow: WorkflowVersioning | None = None
        events: EventVersioning | None = None
        for name in names:
            if name in WORKFLOW_ARMS:
                workflow = next(a for a in WORKFLOW_ARMS if a == name)
            elif name in EVENT_ARMS:
                events = next(a for a in EVENT_ARMS if a == name)
            else:
                choices = ", ".join((*WORKFLOW_ARMS, *EVENT_ARMS))
                raise InvalidInput(f"--arm {name!r}: no such versioning arm; use one of {choices}")
        return cls(workflow, events)

    def env(self, variant: str) -> dict[str, str]:
        if variant == ORCHESTRATION and self.workflow is not None:
            return {WORKFLOW: self.workflow}
        if variant == CHOREOGRAPHY and self.events is not None:
            return {EVENTS: self.events}
        return {}


@dataclass
class Plan:
    """The processes to stop and to start, each start a ``spawn`` request."""

    old: list[Member]
    new: list[dict[str, object]] = field(default_factory=list)


async def members(found: Topology) -> list[Member]:
    answer = await control.request(found.control, "members")
    raw = answer.get("members", {})
    assert isinstance(raw, dict)
    return [Member(kind=kind, **info) for kind, info in raw.items() if info.get("variant")]


def plan(
    current: list[Member],
    default: str,
    to: str,
    strategy: Strategy,
    arms: Arms,
    logins: Path | None = None,
) -> Plan:
    """Which processes run another definition than ``to`` (its ``SAGA_DEFINITION`` name),
    and the new release's processes. A service the new definition adds is started like an
    old one, but logs in to NATS as its own user, from the deployment's ``logins`` folder."""
    old = [m for m in current if m.definition(default) != to]
    if not old:
        raise InvalidInput(f"every process of the deployment runs saga definition {to} already")
    suffix = "" if strategy == "swap" else f"-{to}"
    result = Plan(old)
    kinds = set(kinds_of_process(definition_named(to)))
    for member in old:
        env = {DEFINITION: to, **arms.env(member.variant)}
        result.new.append({"kind": f"{member.kind}{suffix}", "like": member.kind, "env": env})
    per_kind = [m for m in old if m.variant == CHOREOGRAPHY and "all" not in m.args]
    if per_kind:
        known = {m.args[-1] for m in per_kind}
        for kind in sorted(kinds - known):  # a service the new definition adds
            env = {DEFINITION: to, **arms.env(CHOREOGRAPHY)}
            if logins is not None:
                env[LOGINS] = str(logins)
            args = ["choreography", "--service", kind]
            like = per_kind[0].kind
            result.new.append({"kind": f"{kind}{suffix}", "like": like, "args": args, "env": env})
    return result


async def upgrade(
    found: Topology,
    to: str,
    strategy: Strategy,
    arms: Arms = Arms(),
    *,
    drain: Drain | None = None,
    progress: Progress = lambda line: None,
) -> UpgradeLog:
    """Move the deployment to definition ``to`` (see the module docstring); ``drain`` is what
    a rolling upgrade waits for before it stops the old release (none: it stops at once)."""
    definition = definition_named(to)
    log = UpgradeLog(strategy=strategy, to=to, started_at=time.time())
    steps = plan(await members(found), found.definition, to, strategy, arms, found.nats_users)
    if strategy == "swap":
        progress(f"swap: stopping {', '.join(m.kind for m in steps.old)} ...")
        await _all(control.request(found.control, "retire", kind=m.kind) for m in steps.old)
        log = log.model_copy(update={"retired": [m.kind for m in steps.old]})
    progress(f"{strategy}: starting {', '.join(str(n['kind']) for n in steps.new)} ...")
    await _all(
        control.request(found.control, "spawn", wait_s=SPAWN_WAIT_S, **new) for new in steps.new
    )
    current_s, propagated, routed = await _make_current(found, definition, steps)
    await control.request(found.control, "definition", name=to)
    log = log.model_copy(
        update={
            "spawned": [str(n["kind"]) for n in steps.new],
            "new_release_at": time.time(),
            "current_version_s": current_s,
            "current_version_propagated": propagated,
            "current_version_routed": routed,
        }
    )
    if strategy == "rolling":
        if drain is not None:
            progress("rolling: waiting for the old release to drain ...")
            await drain()
        progress(f"rolling: stopping {', '.join(m.kind for m in steps.old)} ...")
        await _all(control.request(found.control, "retire", kind=m.kind) for m in steps.old)
        log = log.model_copy(
            update={"retired": [m.kind for m in steps.old], "drained_at": time.time()}
        )
    return log.model_copy(update={"finished_at": time.time()})


async def _make_current(
    found: Topology, definition: SagaDefinition, steps: Plan
) -> tuple[float | None, bool | None, bool | None]:
    """With Worker Versioning, the new workers' version becomes the current one."""
    workers = [n for n in steps.new if _variant_of(n, steps) == ORCHESTRATION]
    queues: dict[str, str] = {}
    for new in workers:
        like = next(m for m in steps.old if m.kind == new["like"])
        env = {**like.env, **_env(new)}
        if versioned(env.get(WORKFLOW, "patched")):
            queue = env.get(TASK_QUEUE) or found.settings(ORCHESTRATION).temporal_task_queue
            queues[queue] = build_id(definition)
    if not queues:
        return None, None, None
    settings = found.settings(ORCHESTRATION)
    client = await connect(found.temporal_address, settings.temporal_namespace)
    took, propagated, routed = 0.0, True, True
    for queue, build in queues.items():
        made = await set_current(client, queue, build)
        took = max(took, made.seconds)
        propagated, routed = propagated and made.propagated, routed and made.routed
    return took, propagated, routed


def _variant_of(new: Mapping[str, object], steps: Plan) -> str:
    return next(m.variant for m in steps.old if m.kind == new["like"])


def _env(new: Mapping[str, object]) -> dict[str, str]:
    env = new.get("env", {})
    assert isinstance(env, dict)
    return {str(k): str(v) for k, v in env.items()}


async def _all(requests: Iterable[Awaitable[object]]) -> None:
    await asyncio.gather(*requests)
