"""What the supervisor keeps alive: a server or a process of a variant, one kind each.

A `Member` starts, reports whether it runs and is ready, dies on SIGKILL (chaos), and is
started again the same way: a server on the same port and state dir, a process with the same
command line and environment, appending to the same log. Ready means a server answers, or a
process printed its ``ready`` line in this life.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

from shared.servers import ManagedProcess, RunsProcess, ServerError

READY_TIMEOUT_S = 90.0


class Server(Protocol):
    """NatsBroker, TemporalServer, EmbeddedPostgres: what a member needs of each."""

    @property
    def pid(self) -> int | None: ...

    @property
    def running(self) -> bool: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Member(ABC):
    """One kind of the deployment, through its lives."""

    def __init__(self, kind: str, log: Path, variant: str | None) -> None:
        self.kind = kind
        self.log = log
        self.variant = variant
        self.restarts = 0
        self.killed_at: float | None = None
        self.ready_at: float | None = None

    @property
    @abstractmethod
    def pid(self) -> int | None: ...

    @property
    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    async def start(self) -> None:
        """Start and return once ready; ServerError if it cannot be."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop cleanly (or kill what does not stop)."""

    def kill(self) -> int | None:
        """SIGKILL its whole process group now; the pid that was killed."""
        pid = self.pid
        if pid is not None and self.running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            self.killed_at = time.time()
            return pid
        return None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
        self.restarts += 1


class ServerMember(Member):
    """An embedded server; a restart reuses its port and state dir."""

    def __init__(self, kind: str, server: Server, log: Path, variant: str | None = None) -> None:
        super().__init__(kind, log, variant)
        self.server = server

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def running(self) -> bool:
        return self.server.running

    async def start(self) -> None:
        await self.server.start()
        self.ready_at = time.time()

    async def stop(self) -> None:
        await self.server.stop()


class ProcessMember(RunsProcess, Member):
    """A Python process of a variant (``python -m ...``), ready once it printed ``ready``."""

    def __init__(
        self,
        kind: str,
        module_args: Sequence[str],
        env: Mapping[str, str],
        log: Path,
        variant: str,
    ) -> None:
        super().__init__(kind, log, variant)
        self.argv = [sys.executable, "-m", *module_args]
        self.env = dict(env)
        self._process: ManagedProcess | None = None

    async def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        process = self._process = ManagedProcess(
            self.kind, self.argv, env=self.env, log_path=self.log
        )
        await process.start()

        async def printed_ready() -> bool:
            return _ready_since(self.log, offset)

        try:
            await process.wait_until(printed_ready, what="ready", timeout=READY_TIMEOUT_S)
        except ServerError:
            await process.stop()
            raise
        self.ready_at = time.time()

    async def stop(self) -> None:
        if self._process is not None:
            await self._process.stop()


def _ready_since(log: Path, offset: int) -> bool:
    """Whether a line starting with ``ready`` was written to ``log`` after ``offset``."""
    try:
        with log.open("rb") as handle:
            handle.seek(offset)
            tail = handle.read()
    except OSError:
        return False
    return any(line.startswith(b"ready") for line in tail.splitlines())


__all__ = ["Member", "ProcessMember", "ServerMember"]
