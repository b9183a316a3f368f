"""A demo stopped by SIGTERM or SIGINT stops its servers and removes its temporary files."""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
import time
from typing import IO, TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:
    from tests.e2e.conftest import Cli

PROGRESS_DEADLINE_S = 240


class Lines:
    """A process's output read line by line in a thread, so waiting for a line has a deadline.

    A command that never prints the line fails the test at the deadline instead of hanging it.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, prefix: str, deadline_s: float = PROGRESS_DEADLINE_S) -> str:
        """The first line starting with ``prefix``."""
        seen = []
        end = time.monotonic() + deadline_s
        while (line := self._queue.get(timeout=max(0.0, end - time.monotonic()))) is not None:
            seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r}; output was: {seen}")

    def rest(self, deadline_s: float = 120) -> list[str]:
        """Every line after the last one read, up to the end of the output."""
        lines = []
        while (line := self._queue.get(timeout=deadline_s)) is not None:
            lines.append(line)
        return lines


def children(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def still_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_demo_stops_the_servers_and_leaves_no_temporary_files(
    cli: Cli, signum: signal.Signals
) -> None:
    demo = cli.start("demo")
    assert demo.stderr is not None
    stderr = Lines(demo.stderr)
    try:
        stderr.until("done orchestration: ")
        servers = children(demo.pid)
        assert {p.name() for p in servers} >= {"temporal", "nats-server"}
        assert list(cli.tmp.iterdir()), "the run works in a temporary folder"

        demo.send_signal(signum)
        code = demo.wait(timeout=120)
        rest = stderr.rest()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert code == 128 + signum
    assert rest[-1] == (
        f"error: stopped by {signum.name}; servers stopped and temporary files removed"
    )
    assert not any("Traceback" in line for line in rest)
    assert [p.pid for p in servers if still_running(p)] == []
    assert cli.leftovers() == []


def test_the_ui_address_is_printed_while_the_server_answers_there(cli: Cli) -> None:
    demo = cli.start("demo", stdout=subprocess.PIPE)
    assert demo.stdout is not None
    try:
        line = Lines(demo.stdout).until("orchestration UI: ")
        url = line.split()[2]
        host, port = url.removeprefix("http://").split(":")
        listening = {
            c.laddr.port
            for p in children(demo.pid)
            for c in p.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN
        }
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()

    assert host == "127.0.0.1"
    assert int(port) in listening
