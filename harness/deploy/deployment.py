"""What one deployment is made of: its servers, each variant's settings and processes.

`build` lays the deployment out in a state dir: ``nats/`` (the broker's store, its
``auth.conf`` and ``users/``, one owner-only login per NATS user: choreography/access.py),
``temporal/`` (the dev server's database file), ``postgres/`` when chosen,
``choreography/`` and ``orchestration/`` (each variant's SQLite stores; on Postgres, schemas
``choreography_*`` and ``orchestration_*``), and ``logs/`` (one file per process kind).
Ports, and the NATS users' passwords, are those of the last run in that dir (ports when still
free), so an ``up`` after a ``down`` looks the same.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from choreography.access import Logins
from choreography.broker import NatsBroker
from choreography.host import kinds_of_process
from harness.deploy import topology
from harness.deploy.control import ControlAddress
from harness.deploy.members import Member, ProcessMember, ServerMember
from harness.deploy.topology import Ports, ProcessInfo, Topology
from orchestration.bootstrap import DEV_SERVER_CONFIG
from orchestration.server import TemporalServer
from shared.definitions import DEFAULT, definition_named
from shared.faults.deployment import FAULTS_DIR_ENV
from shared.postgres_server import EmbeddedPostgres
from shared.servers import LOOPBACK, free_port, free_port_pair, port_is_free
from shared.settings import ENV_PREFIX, OTLP_ENDPOINT_ENV, Settings, StoreKind

CHOREOGRAPHY = "choreography"
ORCHESTRATION = "orchestration"
WORKER = "worker"
SERVER_KINDS = ("postgres", "nats", "temporal")
PASSED_ON = (OTLP_ENDPOINT_ENV, "SAGA_WORKFLOW_VERSIONING", "SAGA_EVENT_VERSIONING")
"""Variables of the caller's environment its processes get: where spans go, and how they meet
another release (docs/versioning.md)."""
CHAOS_HOOKS = "shared.faults.deployment:chaos_hooks"
"""The hooks of a deployment started for chaos: the fault injector (shared/faults/)."""
USERS = "users"
"""The NATS users' logins, in ``<state dir>/nats/users/<role>.json`` (owner-only)."""
TRACES = "traces"
"""Each process kind writes its spans to ``<state dir>/traces/<kind>.jsonl``, where a run
attached to the deployment reads its sagas' spans (harness/report/collect.py)."""
SPAN_DELAY_MS = "200"
"""How long a process's spans wait before they are written (the SDK's default is 5 s)."""


@dataclass
class Deployment:
    """The members in start order and everything the topology file says about them."""

    state_dir: Path
    store: StoreKind
    ports: Ports
    control: ControlAddress
    servers: list[Member]
    processes: list[Member]
    variants: dict[str, Settings]
    nats: NatsBroker
    temporal: TemporalServer
    postgres: EmbeddedPostgres | None
    definition: str
    faults_dir: Path | None
    nats_users: Path

    @property
    def members(self) -> list[Member]:
        return [*self.servers, *self.processes]

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    def topology(self, *, running: bool) -> Topology:
        pid = os.getpid()
        return Topology(
            state_dir=self.state_dir,
            running=running,
            supervisor_pid=pid,
            supervisor_started=topology.started_at(pid) or 0.0,
            store=self.store,
            nats_url=self.nats.url,
            temporal_address=self.temporal.address,
            temporal_ui=self.temporal.ui_url,
            postgres_url=self.postgres.url if self.postgres is not None else None,
            ports=self.ports,
            control=self.control,
            variants={name: s.environment() for name, s in self.variants.items()},
            processes={m.kind: _info(m) for m in self.members},
            logs=self.logs,
            definition=self.definition,
            faults_dir=self.faults_dir,
            nats_users=self.nats_users,
        )


def _info(member: Member) -> ProcessInfo:
    pid = member.pid if member.running else None
    started = topology.started_at(pid) if pid is not None else None
    return ProcessInfo(
        kind=member.kind, pid=pid, started=started, log=member.log, variant=member.variant
    )


def choose_ports(state_dir: Path, store: StoreKind) -> Ports:
    """The last run's ports when all are still free, else fresh ones."""
    last = topology.read(state_dir)
    if last is not None and _free(last.ports, store):
        return last.ports
    return Ports(
        nats=free_port(),
        nats_monitor=free_port(),
        temporal=free_port_pair(),
        postgres=free_port() if store is StoreKind.POSTGRES else None,
    )


def _free(ports: Ports, store: StoreKind) -> bool:
    wanted = [ports.nats, ports.nats_monitor, ports.temporal, ports.temporal + 1]
    if store is StoreKind.POSTGRES:
        if ports.postgres is None:
            return False
        wanted.append(ports.postgres)
    return all(port_is_free(port, LOOPBACK) for port in wanted)


def build(
    state_dir: Path,
    store: StoreKind,
    control: ControlAddress,
    *,
    chaos: bool = False,
    definition: str = DEFAULT,
) -> Deployment:
    """The deployment in ``state_dir`` (nothing started yet).

    With ``chaos`` every process runs the fault injector (``SAGA_HOOKS``), reading sagas'
    plans from ``faults/`` in the state dir (owner-only) and dying for real at crash points.
    """
    logs = state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ports = choose_ports(state_dir, store)
    users = state_dir / "nats" / USERS
    logins = Logins.kept_in(users, definition_named(definition))
    nats = NatsBroker(
        state_dir=state_dir / "nats",
        port=ports.nats,
        monitor_port=ports.nats_monitor,
        auth=logins.auth(),
    )
    temporal = TemporalServer(
        state_dir=state_dir / "temporal", port=ports.temporal, dynamic_config=DEV_SERVER_CONFIG
    )
    postgres = None
    servers: list[Member] = []
    if store is StoreKind.POSTGRES:
        postgres = EmbeddedPostgres(state_dir=state_dir / "postgres", port=ports.postgres)
        servers.append(ServerMember("postgres", postgres, state_dir / "postgres" / "postgres.log"))
    servers.append(ServerMember("nats", nats, state_dir / "nats" / "nats-server.log", CHOREOGRAPHY))
    temporal_log = state_dir / "temporal" / "temporal.log"
    servers.append(ServerMember("temporal", temporal, temporal_log, ORCHESTRATION))
    otlp = {k: v for k, v in os.environ.items() if k in PASSED_ON}
    base = Settings.from_environment(otlp).model_copy(
        update={
            "data_dir": state_dir,
            "store": store,
            "postgres_url": postgres.url if postgres is not None else None,
            "nats_url": nats.url,
            "temporal_address": temporal.address,
            "definition": definition,
            "hooks": CHAOS_HOOKS if chaos else "",
        }
    )
    faults_dir = state_dir / "faults" if chaos else None
    if faults_dir is not None:
        faults_dir.mkdir(mode=0o700, exist_ok=True)
    variants = {name: _variant(base, name) for name in (CHOREOGRAPHY, ORCHESTRATION)}
    processes = _processes(variants, logs, logins, faults_dir)
    return Deployment(
        state_dir,
        store,
        ports,
        control,
        servers,
        processes,
        variants,
        nats,
        temporal,
        postgres,
        definition,
        faults_dir,
        users,
    )


def _variant(base: Settings, name: str) -> Settings:
    """A variant's settings: its own stores; the broker, the server and queue it uses."""
    settings = base.for_variant(name)
    if name == CHOREOGRAPHY:
        return settings.model_copy(update={"temporal_address": None})
    return settings.model_copy(update={"nats_url": None})


def _processes(
    variants: dict[str, Settings],
    logs: Path,
    logins: Logins,
    faults_dir: Path | None,
) -> list[Member]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    clean["PYTHONUNBUFFERED"] = "1"
    if faults_dir is not None:
        clean[FAULTS_DIR_ENV] = str(faults_dir)
    choreography_env = {**clean, **variants[CHOREOGRAPHY].environment()}
    members: list[Member] = [
        ProcessMember(
            kind,
            ["choreography", "--service", kind],
            {**choreography_env, **_spans(logs.parent, kind), **_login(logins, kind)},
            logs / f"{kind}.log",
            CHOREOGRAPHY,
        )
        for kind in kinds_of_process(logins.definition)
    ]
    worker_env = {**clean, **variants[ORCHESTRATION].environment(), **_spans(logs.parent, WORKER)}
    members.append(
        ProcessMember(
            WORKER, ["orchestration.worker"], worker_env, logs / f"{WORKER}.log", ORCHESTRATION
        )
    )
    return members


def _login(logins: Logins, kind: str) -> dict[str, str]:
    """The NATS user a process kind connects as: its own (never in the topology file)."""
    login = logins.login(kind)
    return {"SAGA_NATS_USER": login.user, "SAGA_NATS_PASSWORD": login.password}


def _spans(state_dir: Path, kind: str) -> dict[str, str]:
    """Where a process kind writes its spans, written soon after they end."""
    path = state_dir / TRACES / f"{kind}.jsonl"
    return {"SAGA_TRACE_FILE": str(path), "OTEL_BSP_SCHEDULE_DELAY": SPAN_DELAY_MS}
