"""`python -m harness.deploy.supervisor --state-dir DIR`: run a whole deployment and keep it alive.

What ``saga-compare up`` starts, detached: the embedded servers (nats-server with a state
dir, the Temporal dev server on a database file, Postgres when chosen), the six choreography
process kinds and the orchestration worker, each a child process restarted when it dies.
Once everything is ready it writes the topology file (harness/deploy/topology.py) and serves the
control channel (harness/deploy/control.py) until SIGTERM, SIGINT or a ``stop`` request; then it
stops every process it started and marks the file not running. Children die with it, even
when it is killed. It holds the state dir's lock for its whole life (one deployment per state
dir), refuses recorded stores that are gone, and records its stores once ready
(harness/deploy/stores.py). A start that fails writes one line to ``supervisor-<pid>.error``
and exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

from harness.deploy import control, lock, rollout, stores, topology
from harness.deploy.deployment import Deployment, build
from harness.deploy.members import Member, ProcessMember
from harness.deploy.topology import Topology
from shared.definitions import DEFAULT, DEFINITIONS
from shared.servers import ServerError
from shared.settings import StoreKind

log = logging.getLogger("saga-compare.supervisor")

RESTART_DELAY_S = 0.2
MAX_BACKOFF_S = 5.0
WATCH_S = 0.1


class Supervisor:
    """Keeps every member alive, holds one down when chaos asks, stops them all at the end."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.members: dict[str, Member] = {m.kind: m for m in deployment.members}
        self._held_until: dict[str, float] = {}
        self._ready: dict[str, asyncio.Event] = {kind: asyncio.Event() for kind in self.members}
        self._stop = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []
        self.retired: dict[str, ProcessMember] = {}
        """Processes stopped for good (harness/deploy/rollout.py), a new one may start like."""

    async def start(self, servers_up: Callable[[], Awaitable[None]] | None = None) -> None:
        """Servers first (each variant's processes need them), then every process at once;
        ``servers_up`` runs between the two (a check that needs the servers)."""
        for member in self.deployment.servers:
            await member.start()
            self._ready[member.kind].set()
        if servers_up is not None:
            await servers_up()
        processes = self.deployment.processes
        await asyncio.gather(*(m.start() for m in processes))
        for member in processes:
            self._ready[member.kind].set()

    def watch(self) -> None:
        self._watchers = [
            asyncio.create_task(self._keep_alive(m), name=f"keep {m.kind} alive")
            for m in self.members.values()
        ]

    async def stop(self) -> None:
        """Processes first (they would only reconnect), then the servers in reverse order."""
        for task in self._watchers:
            task.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        await asyncio.gather(*(m.stop() for m in self.deployment.processes))
        for member in reversed(self.deployment.servers):
            await member.stop()

    async def wait_for_stop(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    async def _keep_alive(self, member: Member) -> None:
        backoff = RESTART_DELAY_S
        while True:
            while member.running:
                await asyncio.sleep(WATCH_S)
            self._ready[member.kind].clear()
            log.warning("%s died (pid %s); restarting", member.kind, member.pid)
            await asyncio.sleep(backoff)
            while time.time() < self._held_until.get(member.kind, 0.0):
                await asyncio.sleep(WATCH_S)  # held down by chaos (or until released)
            self._held_until.pop(member.kind, None)
            try:
                await member.restart()
            except ServerError as error:
                log.error("%s did not come back: %s", member.kind, error)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            backoff = RESTART_DELAY_S
            self._ready[member.kind].set()
            self._refresh()

    def _refresh(self) -> None:
        """Rewrite the topology file with the current pids."""
        topology.write(self.deployment.topology(running=True))

    def refresh(self) -> None:
        self._refresh()

    def adopt(self, member: ProcessMember) -> None:
        """A process started after the deployment (harness/deploy/rollout.py): kept alive."""
        self.members[member.kind] = member
        self.deployment.processes.append(member)
        self._ready[member.kind] = asyncio.Event()
        self._ready[member.kind].set()
        watcher = asyncio.create_task(self._keep_alive(member), name=f"keep {member.kind} alive")
        self._watchers.append(watcher)
        self._refresh()

    async def forget(self, member: ProcessMember) -> None:
        """Stop a process for good: no longer kept alive, no longer in the topology."""
        for task in [t for t in self._watchers if t.get_name() == f"keep {member.kind} alive"]:
            task.cancel()
            self._watchers.remove(task)
        await member.stop()
        self.members.pop(member.kind, None)
        self.retired[member.kind] = member
        self._ready.pop(member.kind, None)
        self.deployment.processes.remove(member)
        self._refresh()

    async def handle(self, request: Mapping[str, object]) -> dict[str, object]:
        """One control request (harness/deploy/control.py)."""
        op = request.get("op")
        if op == "status":
            return {"ok": True, "kinds": {k: self._status(m) for k, m in self.members.items()}}
        if op == "stop":
            self.request_stop()
            return {"ok": True}
        if op in rollout.OPS:
            return await rollout.handle(self, str(op), request)
        member = self.members.get(str(request.get("kind")))
        if member is None:
            return {"ok": False, "error": f"no process kind {request.get('kind')!r} here"}
        if op == "kill":
            return self._kill(member, float(str(request.get("down_s", 0.0))))
        if op == "release":
            self._held_until[member.kind] = time.time()  # a held-down kind comes back now
            return {"ok": True}
        if op == "wait_ready":
            timeout = float(str(request.get("timeout_s", 60.0)))
            async with asyncio.timeout(timeout):
                await self._until_ready(member, request.get("not_pid"))
            return {"ok": True, **self._status(member)}
        return {"ok": False, "error": f"unknown op {op!r}"}

    async def _until_ready(self, member: Member, not_pid: object) -> None:
        """Ready, and (with ``not_pid``) in a life other than that process's."""
        while True:
            await self._ready[member.kind].wait()
            if not_pid is None or (member.running and member.pid != not_pid):
                return
            await asyncio.sleep(WATCH_S)  # it died a moment ago: the watcher has not seen it

    def _kill(self, member: Member, down_s: float) -> dict[str, object]:
        self._held_until[member.kind] = time.time() + down_s
        self._ready[member.kind].clear()
        pid = member.kill()  # None: it was down already (the hold is extended)
        return {"ok": True, "pid": pid, "killed_at": member.killed_at if pid else None}

    def _status(self, member: Member) -> dict[str, object]:
        return {
            "pid": member.pid,
            "running": member.running,
            "ready": member.running and self._ready[member.kind].is_set(),
            "restarts": member.restarts,
            "killed_at": member.killed_at,
            "ready_at": member.ready_at,
        }


async def supervise(
    state_dir: Path,
    store: StoreKind,
    fresh: bool = False,
    *,
    chaos: bool = False,
    definition: str = DEFAULT,
) -> int:
    """Start everything, serve until told to stop, stop everything; the exit code.

    The caller holds the state dir's lock (harness/deploy/lock.py). Recorded stores that are
    gone refuse the start (harness/deploy/stores.py), unless ``fresh`` discards the state.
    """
    if fresh:
        stores.discard(state_dir)
    try:
        stores.check_files(state_dir, store)
    except stores.MissingStores as missing:
        _write_error(state_dir, str(missing))
        return 2
    token = secrets.token_hex(16)
    supervisor: Supervisor | None = None
    server = await control.serve(lambda request: _handle(supervisor, request), token)
    address = control.ControlAddress(port=server.sockets[0].getsockname()[1], token=token)
    deployment = build(state_dir, store, address, chaos=chaos, definition=definition)
    supervisor = Supervisor(deployment)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, supervisor.request_stop)
    try:
        try:
            await supervisor.start(lambda: _check_schemas(deployment))
        except (ServerError, OSError) as error:
            _write_error(state_dir, str(error))
            return 2
        await _record_stores(deployment)
        topology.write(deployment.topology(running=True))
        supervisor.watch()
        await supervisor.wait_for_stop()
        return 0
    finally:
        server.close()
        await supervisor.stop()
        with contextlib.suppress(OSError):
            topology.write(deployment.topology(running=False))


async def _check_schemas(deployment: Deployment) -> None:
    if deployment.postgres is not None:
        await stores.check_schemas(
            deployment.state_dir, deployment.postgres.url, deployment.variants
        )


async def _record_stores(deployment: Deployment) -> None:
    """What this deployment keeps, now that every process has created its stores."""
    state_dir = deployment.state_dir
    files = stores.present(state_dir, deployment.variants)
    schemas = []
    if deployment.postgres is not None:
        schemas = await stores.schemas(deployment.postgres.url, deployment.variants)
    stores.write(state_dir, deployment.store, stores.Kept(files=files, schemas=schemas))


async def _handle(
    supervisor: Supervisor | None, request: Mapping[str, object]
) -> dict[str, object]:
    if supervisor is None:
        return {"ok": False, "error": "starting"}
    return await supervisor.handle(request)


def _write_error(state_dir: Path, message: str) -> None:
    """The one line ``up`` shows for a start that failed (this supervisor's own file)."""
    path = topology.error_file(state_dir, os.getpid())
    path.write_text(" ".join(message.split()) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.deploy.supervisor", description=__doc__
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--store", choices=[k.value for k in StoreKind], default="sqlite")
    parser.add_argument("--definition", choices=list(DEFINITIONS), default=DEFAULT)
    parser.add_argument("--chaos", action="store_true", help="a fault injector in every process")
    parser.add_argument("--fresh", action="store_true", help="discard the state and start empty")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    state_dir = args.state_dir.resolve()
    try:
        held = lock.acquire(state_dir)  # held (open) until this process ends
    except lock.LockHeld as other:
        _write_error(state_dir, lock.already_running(state_dir, other.pid))
        return 2
    store = StoreKind(args.store)
    chosen = {"chaos": args.chaos, "definition": args.definition}
    try:
        return asyncio.run(supervise(state_dir, store, args.fresh, **chosen))
    finally:
        os.close(held)


__all__ = ["Supervisor", "Topology", "main", "supervise"]

if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
