"""A deployment from `saga-compare up` for a test module, and ways to look at its processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import psutil

from harness.deploy import lock, topology
from harness.deploy.topology import Topology, alive

COMMAND = Path(sys.executable).parent / "saga-compare"


def saga_compare(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it (``env``: variables set on top of ours)."""
    return subprocess.run(
        [str(COMMAND), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def every_pid(found: Topology) -> dict[str, tuple[int, float | None]]:
    """Every process the deployment's supervisor started (with their start times), and itself."""
    pids: dict[str, tuple[int, float | None]] = {
        "supervisor": (found.supervisor_pid, found.supervisor_started)
    }
    for kind, info in found.processes.items():
        if info.pid is not None:
            pids[kind] = (info.pid, info.started)
    return pids


def running(pids: dict[str, tuple[int, float | None]]) -> list[str]:
    return [kind for kind, (pid, started) in pids.items() if alive(pid, started)]


@contextmanager
def deployment(*up_args: str, env: dict[str, str] | None = None) -> Iterator[Topology]:
    """`up` in a fresh state dir (reachable by an embedded Postgres' own account), `down` after.

    Whatever the test did, nothing the deployment started is left running afterwards.
    """
    state = Path(tempfile.mkdtemp(prefix="saga-deploy-test-"))
    state.chmod(0o711)
    try:
        started = saga_compare("up", "--state-dir", str(state), *up_args, env=env)
        assert started.returncode == 0, started.stderr
        found = topology.read(state)
        assert found is not None
        yield found
    finally:
        last = topology.read(state)
        if (last is not None and last.supervisor_alive) or lock.holder(state) is not None:
            saga_compare("down", "--state-dir", str(state))  # (a test may have stopped it)
        if last is not None:
            assert running(every_pid(last)) == []
        shutil.rmtree(state, ignore_errors=True)


def latest(found: Topology) -> Topology:
    """The deployment in ``found``'s state dir as its topology file says now (a test before may
    have stopped and started it again: other pids, another control token)."""
    current = topology.read(found.state_dir)
    assert current is not None
    return current


def running_again(found: Topology, *up_args: str) -> Topology:
    """The deployment in ``found``'s state dir, started again with ``up_args`` (those its
    fixture's `up` used) when a test before left it stopped; as it is now."""
    current = topology.read(found.state_dir)
    if current is None or not current.supervisor_alive:
        started = saga_compare("up", "--state-dir", str(found.state_dir), *up_args)
        assert started.returncode == 0, started.stderr
    return latest(found)


def wait_for_line(stream: IO[str], text: str, timeout: float = 300) -> list[str]:
    """Read ``stream`` until a line holding ``text``; every line read so far."""
    lines: list[str] = []
    reader = ThreadPoolExecutor(max_workers=1)
    deadline = time.monotonic() + timeout
    try:
        while True:
            line = reader.submit(stream.readline).result(max(0.1, deadline - time.monotonic()))
            if not line:
                raise AssertionError(f"the stream ended before {text!r}: {lines}")
            lines.append(line.rstrip("\n"))
            if text in line:
                return lines
    finally:
        reader.shutdown(wait=False)


def supervisors(state: Path) -> list[psutil.Process]:
    """The supervisor processes running a deployment in ``state`` (one at most, we hope)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = process.info["cmdline"] or []
        if "harness.deploy.supervisor" in command and str(state) in command:
            found.append(process)
    return found


def stop_supervisors(state: Path) -> None:
    """SIGTERM every supervisor of ``state`` (a test's leftovers); its children go with it."""
    for process in supervisors(state):
        with contextlib.suppress(psutil.Error):
            process.terminate()
            process.wait(60)
