"""Control requests that change what a running deployment runs: a new release, side by side.

The supervisor (harness/deploy/supervisor.py) answers these besides its own (`OPS`):

- ``{"op": "members"}``: every process kind with its variant, its module arguments and the
  ``SAGA_*`` variables that differ between releases (definition, versioning, queue, durables);
- ``{"op": "spawn", "kind": K, "like": L, "args": [...], "env": {...}}``: start a new process
  kind K, supervised like the others: L's command line (or ``args``: the module and its
  arguments) and L's environment with ``env`` over it (L may have been retired: a swap stops
  the old release first); answers once K printed ``ready``;
- ``{"op": "retire", "kind": K}``: stop K for good (SIGTERM, then SIGKILL) and forget it;
- ``{"op": "definition", "name": N}``: the saga definition the deployment runs from now on
  (what the topology file says, and so what a front door attaching later uses).

`saga-compare upgrade` uses them for its two strategies (harness/versioning/upgrade.py): a
swap retires every process of the old release and spawns the new one; a rolling upgrade
spawns the new release beside the old, and retires the old once it has drained.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from harness.deploy.members import ProcessMember
from shared.definitions import definition_named
from shared.settings import ENV_PREFIX

if TYPE_CHECKING:
    from harness.deploy.supervisor import Supervisor

OPS = ("members", "spawn", "retire", "definition")
RELEASE_VARIABLES = (
    "SAGA_DEFINITION",
    "SAGA_WORKFLOW_VERSIONING",
    "SAGA_EVENT_VERSIONING",
    "SAGA_TEMPORAL_TASK_QUEUE",
    "SAGA_NATS_CONSUMER_SUFFIX",
)
"""What ``members`` reports of each process's environment: what tells releases apart."""
KIND_PATTERN = "abcdefghijklmnopqrstuvwxyz0123456789-_."


async def handle(
    supervisor: Supervisor, op: str, request: Mapping[str, object]
) -> dict[str, object]:
    """One of `OPS` (the supervisor hands them here)."""
    if op == "members":
        return {"ok": True, "members": _members(supervisor)}
    if op == "definition":
        return _definition(supervisor, str(request.get("name")))
    kind = str(request.get("kind"))
    if op == "spawn":
        return await _spawn(supervisor, kind, request)
    return await _retire(supervisor, kind)


def _members(supervisor: Supervisor) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for kind, member in supervisor.members.items():
        if isinstance(member, ProcessMember):
            found[kind] = {
                "variant": member.variant,
                "args": member.argv[2:],
                "env": {k: v for k, v in member.env.items() if k in RELEASE_VARIABLES},
                "running": member.running,
                "pid": member.pid,
            }
    return found


async def _spawn(
    supervisor: Supervisor, kind: str, request: Mapping[str, object]
) -> dict[str, object]:
    if not kind or any(c not in KIND_PATTERN for c in kind.lower()):
        return {"ok": False, "error": f"a process kind is letters, digits, '-', '_', '.': {kind!r}"}
    if kind in supervisor.members:
        return {"ok": False, "error": f"process kind {kind!r} runs already"}
    name = str(request.get("like"))
    like = supervisor.members.get(name) or supervisor.retired.get(name)
    if not isinstance(like, ProcessMember):
        return {"ok": False, "error": f"no process kind {request.get('like')!r} to start like"}
    env = request.get("env") or {}
    args = request.get("args") or like.argv[2:]
    if not isinstance(env, dict) or not isinstance(args, list):
        return {"ok": False, "error": "env is an object of variables, args a list"}
    bad = [k for k in env if not str(k).startswith(ENV_PREFIX)]
    if bad:
        return {"ok": False, "error": f"only SAGA_ variables may change: {', '.join(bad)}"}
    member = ProcessMember(
        kind,
        [str(a) for a in args],
        {**like.env, **{str(k): str(v) for k, v in env.items()}},
        like.log.with_name(f"{kind}.log"),
        like.variant or "",
    )
    await member.start()  # ServerError (answered as a refusal) if it never printed ready
    supervisor.adopt(member)
    return {"ok": True, "pid": member.pid, "ready_at": member.ready_at}


async def _retire(supervisor: Supervisor, kind: str) -> dict[str, object]:
    member = supervisor.members.get(kind)
    if not isinstance(member, ProcessMember):
        return {"ok": False, "error": f"no process kind {kind!r} here"}
    pid = member.pid
    await supervisor.forget(member)
    return {"ok": True, "pid": pid}


def _definition(supervisor: Supervisor, name: str) -> dict[str, object]:
    definition_named(name)  # InvalidInput (answered as a refusal) for an unknown name
    deployment = supervisor.deployment
    deployment.definition = name
    for variant, settings in deployment.variants.items():
        deployment.variants[variant] = settings.model_copy(update={"definition": name})
    supervisor.refresh()
    return {"ok": True, "definition": name}
