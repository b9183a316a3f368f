"""One supervisor per state dir: an exclusive lock it holds for its whole life.

The supervisor takes ``fcntl.flock`` on ``<state dir>/supervisor.lock`` before it touches
anything and writes its pid there; the kernel drops the lock when the process ends, however
it ends, so a killed supervisor never leaves a stale lock. A second supervisor, or an ``up``
while one starts (before the topology file exists), or after the topology file was moved
away, finds the lock held and names the pid that holds it instead of starting a second
deployment on the same stores.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

FILE_NAME = "supervisor.lock"
ACQUIRE_S = 1.0
"""How long a supervisor tries: another ``up`` probing the lock holds it for microseconds."""
RETRY_S = 0.02


class LockHeld(Exception):
    """Another process holds the state dir's lock (its pid, when it wrote one)."""

    def __init__(self, pid: int | None) -> None:
        super().__init__(f"supervisor pid {pid if pid is not None else 'unknown'}")
        self.pid = pid


def path_of(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def acquire(state_dir: Path) -> int:
    """Take the lock for this process's life and record its pid; the open descriptor
    (keep it: closing it releases the lock). LockHeld when another process holds it."""
    fd = os.open(path_of(state_dir), os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + ACQUIRE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise LockHeld(holder(state_dir)) from None
            time.sleep(RETRY_S)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def holder(state_dir: Path) -> int | None:
    """The pid holding the lock, or None when nobody does (a probe: released at once)."""
    try:
        fd = os.open(path_of(state_dir), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _recorded_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _recorded_pid(fd: int) -> int | None:
    """The pid the holder wrote (it writes it right after locking: wait for it a moment)."""
    deadline = time.monotonic() + ACQUIRE_S
    while True:
        with contextlib.suppress(ValueError):
            return int(os.pread(fd, 32, 0).decode().strip())
        if time.monotonic() > deadline:
            return None
        time.sleep(RETRY_S)


def already_running(state_dir: Path, pid: int | None) -> str:
    """Why a second deployment is not started on the same stores (one line)."""
    return (
        f"a deployment is already starting or running in {state_dir} (supervisor pid {pid}); "
        f"`saga-compare up --state-dir {state_dir}` again says where it is once it is up, "
        f"`saga-compare down --state-dir {state_dir}` stops it"
    )
