"""`saga-compare up` and `down`: a supervised deployment that outlives the command.

``up`` starts the supervisor (harness/deploy/supervisor.py) detached, waits until it wrote the
topology file of a ready deployment, and prints where everything is. ``down`` asks the
supervisor to stop and waits until every process it started is gone. The state (NATS
streams, the Temporal database, the stores) stays in the state dir for the next ``up``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from rich.markup import escape

from harness.cli.console import say
from harness.deploy import control, lock, topology
from harness.deploy.topology import Topology, alive
from shared.definitions import DEFAULT
from shared.servers import ServerError
from shared.settings import StoreKind
from shared.validation import InvalidInput

START_TIMEOUT_S = 180.0
PORT_ATTEMPTS = 3
"""Starts tried when a port chosen free was taken by another process before its server bound
it (a busy machine); each new start chooses its ports again."""
IN_USE = "already in use"
STOP_TIMEOUT_S = 60.0
POLL_S = 0.1


async def start(
    state_dir: Path,
    store: StoreKind,
    fresh: bool = False,
    *,
    chaos: bool = False,
    definition: str = DEFAULT,
) -> tuple[Topology, bool]:
    """The running deployment in ``state_dir``: the one there already, or a new one (with
    ``fresh``, on a discarded state). Returns it and whether this call started it.

    ``chaos`` starts it with a fault injector in every process (plans out of band, real
    deaths at crash points); ``definition`` names the saga definition its processes run. A
    supervisor that holds the state dir's lock without a running topology (another ``up``
    starting, or topology.json moved away) is named, never joined by a second one.
    """
    existing = _running(state_dir)
    if existing is not None:
        stop_first = f"stop it with `saga-compare down --state-dir {state_dir}` first"
        if existing.store is not store or fresh:
            why = f"on {existing.store.value} " if existing.store is not store else ""
            raise InvalidInput(f"a deployment {why}is running in {state_dir}; {stop_first}")
        if (existing.faults_dir is not None) != chaos:
            started = "with" if existing.faults_dir is not None else "without"
            raise InvalidInput(
                f"a deployment started {started} --chaos is running in {state_dir}; {stop_first}"
            )
        if existing.definition != definition:
            raise InvalidInput(
                f"a deployment of saga definition {existing.definition!r} is running in "
                f"{state_dir}; {stop_first}"
            )
        return existing, False
    holder = lock.holder(state_dir)
    if holder is not None:
        raise InvalidInput(lock.already_running(state_dir, holder))
    attempt = 1
    while True:
        try:
            return await _spawn(state_dir, store, fresh, chaos, definition), True
        except ServerError as error:
            if IN_USE not in str(error) or attempt == PORT_ATTEMPTS:
                raise
            attempt += 1
            fresh = False  # discarded already: a retry keeps what the first start created


def _running(state_dir: Path) -> Topology | None:
    """The deployment whose supervisor runs, per topology.json; an unreadable file counts as
    none when no supervisor holds the lock (the file can be moved away)."""
    try:
        found = topology.read(state_dir)
    except InvalidInput:
        if lock.holder(state_dir) is None:
            raise
        return None
    return found if found is not None and found.supervisor_alive else None


async def _spawn(
    state_dir: Path, store: StoreKind, fresh: bool, chaos: bool, definition: str
) -> Topology:
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "harness.deploy.supervisor", "--state-dir", str(state_dir)]
    argv += ["--store", store.value, "--definition", definition]
    argv += (["--fresh"] if fresh else []) + (["--chaos"] if chaos else [])
    with (logs / "supervisor.log").open("ab") as log:
        child = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        return await _until_ready(state_dir, child)
    except BaseException:
        _stop_child(child)
        raise


async def _until_ready(state_dir: Path, child: subprocess.Popen[bytes]) -> Topology:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            raise ServerError(_failure(state_dir, child.pid, code))
        found = topology.read(state_dir)
        if found is not None and found.running and found.supervisor_pid == child.pid:
            return found
        await asyncio.sleep(POLL_S)
    raise ServerError(
        f"the deployment was not ready within {START_TIMEOUT_S:g}s; "
        f"see {state_dir / 'logs' / 'supervisor.log'}"
    )


def _failure(state_dir: Path, pid: int, code: int) -> str:
    error = topology.error_file(state_dir, pid)
    if error.is_file():
        message = error.read_text(encoding="utf-8").strip()
        error.unlink(missing_ok=True)
        return message
    return (
        f"the supervisor exited with code {code} before the deployment was ready; "
        f"see {state_dir / 'logs' / 'supervisor.log'}"
    )


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """A supervisor that never became ready: stop it (its children die with it)."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


async def stop(state_dir: Path) -> tuple[Topology | None, list[str]]:
    """Stop the deployment in ``state_dir``; returns it and the kinds left running (none)."""
    found = _running(state_dir)
    if found is None:
        return None, []
    try:
        await control.request(found.control, "stop", wait_s=10.0)
    except ServerError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(found.supervisor_pid, signal.SIGTERM)
    left = await _until_gone(found)
    return found, left


async def stop_unlisted(state_dir: Path) -> int | None:
    """Stop a supervisor that holds the state dir's lock without a running topology.json
    (the file was moved away); its pid, or None when there is none. Its children go with it."""
    pid = lock.holder(state_dir)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while lock.holder(state_dir) is not None:
        if time.monotonic() > deadline:
            raise ServerError(f"supervisor pid {pid} did not stop within {STOP_TIMEOUT_S:g}s")
        await asyncio.sleep(POLL_S)
    return pid


async def _until_gone(found: Topology) -> list[str]:
    """Wait until the supervisor and every process of the file are gone; SIGKILL stragglers."""
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _running_kinds(found) and not alive(found.supervisor_pid, found.supervisor_started):
            return []
        await asyncio.sleep(POLL_S)
    for kind in _running_kinds(found):
        info = found.processes[kind]
        if info.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(info.pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    return _running_kinds(found)


def _running_kinds(found: Topology) -> list[str]:
    """Kinds whose recorded pid still runs (rewritten pids included: re-read the file)."""
    latest = topology.read(found.state_dir) or found
    return [
        kind
        for kind, info in {**found.processes, **latest.processes}.items()
        if alive(info.pid, info.started)
    ]


def print_where(found: Topology, *, started: bool) -> None:
    """Where everything is: addresses, UI, state dir, logs, and what to run next."""
    state = escape(str(found.state_dir))
    verb = "up" if started else "already up"
    chaos = ", for chaos: faults injected out of band" if found.faults_dir is not None else ""
    say(
        f"deployment {verb} in {state} (store: {found.store.value}, saga definition "
        f"{escape(found.definition)}{chaos})"
    )
    nats_monitor = f"http://127.0.0.1:{found.ports.nats_monitor}"
    say(f"  NATS         {escape(found.nats_url)} (monitoring {nats_monitor})")
    if found.nats_users is not None:
        users = escape(str(found.nats_users))
        say(f"               a user per process kind: logins in {users}/ (owner-only)")
    say(
        f"  Temporal     {escape(found.temporal_address)}, namespace default, "
        f"task queue {escape(found.settings('orchestration').temporal_task_queue)}"
    )
    if found.temporal_ui:
        say(f"  Temporal UI  {escape(found.temporal_ui)}")
    if found.postgres_url:
        say(f"  Postgres     {escape(found.postgres_url)}")
    pids = ", ".join(f"{kind} {info.pid}" for kind, info in found.processes.items())
    say(f"  processes    {escape(pids)}")
    say(f"  logs         {escape(str(found.logs))}/ (one file per process kind; servers log in")
    say("               their own folders: nats/, temporal/, postgres/)")
    say(f"  control      127.0.0.1:{found.control.port} (token in {state}/topology.json)")
    first = (
        f"saga-compare demo --attach {state}"
        if found.faults_dir is not None
        else f"saga-compare run -s happy_path --attach {state} (the demo injects faults: "
        "it needs `up --chaos`)"
    )
    say(
        f"next: {first} · saga-compare check --attach {state} · "
        f"saga-compare down --state-dir {state}"
    )
