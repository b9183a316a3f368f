"""A running deployment, as its supervisor describes it in ``<state dir>/topology.json``.

The file is what every other command reads to reach the deployment: the servers' addresses,
each variant's settings (the exact ``SAGA_*`` variables its processes run with, so a front
door reads the same stores), every process kind with its pid and log, and the supervisor's
control channel. It is written atomically (a temporary file renamed over it), readable by
its owner only (it holds the control token), and kept after ``down`` with ``running: false``
so the next ``up`` can reuse the same ports.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from choreography.access import FRONT, MONITOR, read_login
from harness.deploy.control import ControlAddress
from shared.settings import Settings, StoreKind
from shared.validation import InvalidInput

FILE_NAME = "topology.json"
VERSION = 1


class ProcessInfo(BaseModel):
    """One supervised process kind and its current life."""

    model_config = ConfigDict(frozen=True)

    kind: str
    pid: int | None = None
    started: float | None = None
    """The process's start time as the OS reports it: a pid recycled later will not match."""
    log: Path
    variant: str | None = None
    """The variant it serves; None for a server both use (Postgres)."""


class Ports(BaseModel):
    """The loopback ports the servers listen on, reused by the next ``up`` when free."""

    model_config = ConfigDict(frozen=True)

    nats: int
    nats_monitor: int
    temporal: int
    postgres: int | None = None


class Topology(BaseModel):
    """Everything a command needs to drive, check or stop a deployment."""

    model_config = ConfigDict(frozen=True)

    version: int = VERSION
    state_dir: Path
    running: bool = True
    supervisor_pid: int
    supervisor_started: float
    started_at: float = Field(default_factory=time.time)
    store: StoreKind
    nats_url: str
    temporal_address: str
    temporal_ui: str | None = None
    postgres_url: str | None = None
    ports: Ports
    control: ControlAddress
    variants: dict[str, dict[str, str]]
    """Each variant's settings as the ``SAGA_*`` variables its processes run with."""
    processes: dict[str, ProcessInfo]
    logs: Path
    definition: str = "v1"
    """The saga definition every process runs (``SAGA_DEFINITION``)."""
    faults_dir: Path | None = None
    """Started for chaos (``up --chaos``): where its processes read sagas' plans; None when
    the deployment runs no fault injector."""
    nats_users: Path | None = None
    """Where each NATS user's login is kept, one owner-only file per role
    (choreography/access.py); None for a broker without authorization."""

    def settings(self, variant: str, role: str = FRONT) -> Settings:
        """The settings of one variant's processes (stores, servers, task queue), logged in
        to NATS as ``role``: the front door, unless the caller is another (the monitor)."""
        return self.logged_in(Settings.from_environment(self.variants[variant]), role)

    def front_door(self) -> Settings:
        """Settings naming both variants' servers, from which ``Settings.for_variant`` gives
        each variant's stores as its processes keep them (what the monitor reads), logged in
        to NATS as the monitor (the one user that may send operator commands)."""
        return self.settings("choreography", MONITOR).model_copy(
            update={
                "data_dir": self.state_dir,
                "postgres_schema_prefix": "",
                "temporal_address": self.temporal_address,
            }
        )

    def logged_in(self, settings: Settings, role: str) -> Settings:
        """``settings`` with the NATS user of ``role`` (unchanged without authorization)."""
        login = read_login(self.nats_users / f"{role}.json") if self.nats_users else None
        if login is None:
            return settings
        password = SecretStr(login.password)
        return settings.model_copy(update={"nats_user": login.user, "nats_password": password})

    @property
    def supervisor_alive(self) -> bool:
        return self.running and alive(self.supervisor_pid, self.supervisor_started)


def path_of(state_dir: Path) -> Path:
    return state_dir / FILE_NAME


def error_file(state_dir: Path, supervisor_pid: int) -> Path:
    """Where a supervisor that could not start leaves its one line for ``up``."""
    return state_dir / f"supervisor-{supervisor_pid}.error"


def write(topology: Topology) -> None:
    """Replace the file atomically; owner-only (it holds the control token)."""
    target = path_of(topology.state_dir)
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(topology.model_dump_json(indent=2))
    temporary.replace(target)


def read(state_dir: Path) -> Topology | None:
    """The deployment last written in ``state_dir``, or None when there is none."""
    try:
        text = path_of(state_dir).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise InvalidInput(
            f"cannot read {path_of(state_dir)} ({error.strerror}); check the folder's permissions"
        ) from None
    try:
        return Topology.model_validate_json(text)
    except ValidationError:
        raise InvalidInput(
            f"{path_of(state_dir)} is not a topology file saga-compare wrote; move it away"
        ) from None


def running(state_dir: Path) -> Topology:
    """The running deployment in ``state_dir``, or one line saying how to start one."""
    topology = read(state_dir)
    if topology is None or not topology.supervisor_alive:
        raise InvalidInput(
            f"no deployment is running in {state_dir}; start one with "
            f"`saga-compare up --state-dir {state_dir}` (or pass the folder `up` used)"
        )
    return topology


def started_at(pid: int) -> float | None:
    """The OS's start time of ``pid``, or None when no such process exists."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def alive(pid: int | None, started: float | None) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` (not a recycled pid)."""
    if pid is None:
        return False
    now = started_at(pid)
    if now is None or (started is not None and abs(now - started) > 0.5):
        return False
    with contextlib.suppress(psutil.Error):
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    return False
