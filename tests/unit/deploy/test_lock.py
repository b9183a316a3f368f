"""The state dir's lock: one holder at a time, named by its pid, gone with its process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.deploy import lock

HOLD = """
import sys, time
from pathlib import Path
from harness.deploy import lock
lock.acquire(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.readline()
"""


def test_a_held_lock_names_its_holder_and_is_free_once_the_holder_is_gone(
    tmp_path: Path,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"

    seen = lock.holder(tmp_path)
    with pytest.raises(lock.LockHeld) as refused:
        lock.acquire(tmp_path)
    holder.kill()  # however it ends, the kernel releases the lock
    holder.wait()

    assert seen == holder.pid and refused.value.pid == holder.pid
    assert lock.holder(tmp_path) is None
    fd = lock.acquire(tmp_path)
    assert lock.path_of(tmp_path).read_text() == f"{os.getpid()}\n"
    os.close(fd)


def test_a_state_dir_never_locked_has_no_holder(tmp_path: Path) -> None:
    assert lock.holder(tmp_path) is None
