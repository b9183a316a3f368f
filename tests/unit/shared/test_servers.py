"""How a launcher stops its server: asked when its state outlives it, killed when it does not.

The server here is a fake: a Python child that listens on a port and, asked to stop (SIGTERM),
writes a marker file and exits 0. A SIGKILL leaves no marker and an exit by signal 9.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from shared.servers import ServerLauncher, free_port

FAKE_SERVER = """
import signal, socket, sys
from pathlib import Path

def asked(*_):
    Path(sys.argv[1]).write_text("asked")
    sys.exit(0)

signal.signal(signal.SIGTERM, asked)
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers bind (free_port)
listener.bind(("127.0.0.1", int(sys.argv[2])))
listener.listen()
while True:
    listener.accept()[0].close()
"""


class FakeServer(ServerLauncher):
    """A launcher of the fake server; ``marker`` is written when it is asked to stop."""

    name = "fake"

    def __init__(self, marker: Path, state_dir: Path | None = None) -> None:
        self.marker = marker
        self.state_dir = state_dir
        self.port = free_port()

    def ports_requested(self) -> bool:
        return True

    async def _start_once(self) -> None:
        self._state()
        argv = [sys.executable, "-c", FAKE_SERVER, str(self.marker), str(self.port)]
        await self._launch(argv, port=self.port, ready=self._ready, what="listening")

    async def _ready(self) -> bool:
        return True

    @property
    def exit_code(self) -> int | None:
        assert self._process is not None
        return self._process.returncode


class KeptWhenKilled(FakeServer):
    """A server that would leave something behind if killed (as Postgres does)."""

    kill_when_discarded = False


async def test_a_server_whose_state_is_kept_is_asked_to_stop(tmp_path: Path) -> None:
    server = FakeServer(tmp_path / "marker", state_dir=tmp_path / "state")
    await server.start()
    await server.stop()

    assert server.exit_code == 0
    assert (tmp_path / "marker").read_text() == "asked"
    assert (tmp_path / "state").is_dir()  # a given state dir stays


async def test_a_server_whose_state_is_discarded_is_killed_without_being_asked(
    tmp_path: Path,
) -> None:
    server = FakeServer(tmp_path / "marker")
    await server.start()
    temporary = server._temp_dir
    await server.stop()

    assert server.exit_code == -signal.SIGKILL
    assert not (tmp_path / "marker").exists()
    assert temporary is not None and not temporary.exists()


@pytest.mark.parametrize("state", ["given", "temporary"])
async def test_a_server_that_must_clean_up_is_always_asked_to_stop(
    tmp_path: Path, state: str
) -> None:
    server = KeptWhenKilled(tmp_path / "marker", tmp_path / "state" if state == "given" else None)
    await server.start()
    await server.stop()

    assert server.exit_code == 0
    assert (tmp_path / "marker").read_text() == "asked"
