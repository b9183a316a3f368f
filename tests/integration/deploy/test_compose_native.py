"""The compose topology, run natively: the processes docker-compose.yml names, with its commands
and environment, on loopback ports, and one scenario through the harness in front-door mode.

The monitor container serves the live page over the same deployment; it must see the
scenario's sagas of both styles. Docker is not available here, so the servers are the same
binaries the embedded default
uses: a 3-node nats-server cluster (routes and users as in the file), a database on the
session's embedded Postgres for the saga stores, and the Temporal dev server standing in for
the compose file's Temporal. Only the addresses are rewritten (container names become loopback
ports, the mounted config its file in deploy/) and the `${...}` references filled in as
compose fills them from `.env` (here: a `.env` written by `scripts/compose-env.sh` for the
test); every other variable and every argument is the file's own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import nats
import psutil
import pytest
import pytest_asyncio
import yaml

from choreography.access import ADMIN
from choreography.broker import SAGA_STREAM
from orchestration.server import TemporalServer
from shared.postgres_server import EmbeddedPostgres
from shared.servers import LOOPBACK, ManagedProcess, find_binary, free_port
from shared.settings import ENV_PREFIX
from tests.compose_support import run_env_script

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

ROOT = Path(__file__).parents[3]
COMMAND = Path(sys.executable).parent / "saga-compare"


def script_passwords() -> dict[str, str]:
    """The passwords a user gets: a run of scripts/compose-env.sh in a scratch folder."""
    with tempfile.TemporaryDirectory() as scratch:
        return run_env_script(Path(scratch))


PASSWORDS = script_passwords()
_REFERENCE = re.compile(r"\$\{(\w+)(?::[?-][^}]*)?\}")


def load_compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def interpolated(value: object) -> str:
    """A value with its ``${NAME...}`` references filled in as compose would from .env."""
    return _REFERENCE.sub(lambda m: PASSWORDS.get(m.group(1), ""), str(value))


def mounted(container: dict[str, Any], path: str) -> str:
    """The file in this checkout a container sees at ``path`` (its read-only volume)."""
    for volume in container.get("volumes", []):
        source, _, rest = str(volume).partition(":")
        if rest.split(":")[0] == path:
            return str(ROOT / source)
    raise AssertionError(f"nothing is mounted at {path}")


def admin_login() -> dict[str, str]:
    return {"user": ADMIN, "password": PASSWORDS[f"SAGA_NATS_PASSWORD_{ADMIN.upper()}"]}


async def start_nats_cluster(
    stack: AsyncExitStack, compose: dict[str, Any], state: Path
) -> dict[str, str]:
    """The file's three nodes with their names, cluster name, routes and users, on loopback
    ports."""
    nodes = [name for name in compose["services"] if name.startswith("nats-")]
    clients = {node: free_port() for node in nodes}
    routes = {node: free_port() for node in nodes}
    for node in nodes:
        container = compose["services"][node]
        command = list(container["command"])
        config = command.index("-c") + 1
        command[config] = mounted(container, command[config])
        command[command.index("-sd") + 1] = str(state / node)
        command[command.index("--cluster") + 1] = f"nats://{LOOPBACK}:{routes[node]}"
        listed = command[command.index("--routes") + 1].split(",")
        command[command.index("--routes") + 1] = ",".join(
            f"nats://{LOOPBACK}:{routes[r.removeprefix('nats://').split(':')[0]]}" for r in listed
        )
        argv = [find_binary("nats-server"), *command, "-a", LOOPBACK, "-p", str(clients[node])]
        env = {**os.environ, **{k: interpolated(v) for k, v in container["environment"].items()}}
        process = await stack.enter_async_context(ManagedProcess(node, argv, env=env))
        await process.wait_for_port(clients[node])
    urls = {node: f"nats://{LOOPBACK}:{port}" for node, port in clients.items()}
    await wait_for_jetstream(list(urls.values()))
    return urls


async def wait_for_jetstream(urls: list[str]) -> None:
    connection = await nats.connect(servers=urls, **admin_login())
    try:
        for _ in range(200):
            try:
                await connection.jetstream().account_info()
                return
            except Exception:
                await asyncio.sleep(0.1)
        raise TimeoutError("the JetStream cluster elected no leader")
    finally:
        await connection.close()


def native_env(environment: dict[str, Any], addresses: dict[str, str]) -> dict[str, str]:
    """The container's variables, with container addresses replaced by loopback ones."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    for key, value in environment.items():
        env[key] = addresses.get(key, interpolated(value))
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # no collector natively
    return env


def native_command(command: list[str]) -> tuple[list[str], str]:
    """A container's command as a local process, and what it prints once it serves.

    ``python -m ...`` runs with this interpreter; ``saga-compare ...`` (the monitor) with the
    installed command, on loopback and a free port instead of every address and a fixed one.
    """
    if command[0] == "python":
        return [sys.executable, *command[1:]], "ready"
    assert command[0] == "saga-compare"
    argv = [str(COMMAND), *command[1:]]
    argv[argv.index("--host") + 1] = LOOPBACK
    argv[argv.index("--port") + 1] = str(free_port())
    return argv, "monitor: http"


class Native:
    """The running topology: what the harness container's command needs to reach it."""

    def __init__(
        self,
        compose: dict[str, Any],
        addresses: dict[str, str],
        urls: list[str],
        logs: Path,
        monitor: str,
    ) -> None:
        self.compose = compose
        self.addresses = addresses
        self.nats_urls = urls
        self.logs = logs
        self.monitor = monitor

    def tails(self) -> str:
        """The end of every process's log, for a failure message."""
        return "\n".join(
            f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:])
            for log in sorted(self.logs.glob("*.log"))
        )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def topology(
    tmp_path_factory: pytest.TempPathFactory, postgres_server: EmbeddedPostgres
) -> AsyncIterator[Native]:
    compose = load_compose()
    state = tmp_path_factory.mktemp("compose")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    # The saga-postgres container: a database of its own on the session's embedded server.
    saga_db = await postgres_server.create_database(f"compose_{uuid.uuid4().hex[:8]}")
    async with AsyncExitStack() as stack:
        urls = await start_nats_cluster(stack, compose, state)
        temporal = await stack.enter_async_context(TemporalServer(ui=False))
        addresses = {
            "SAGA_NATS_URL": ",".join(urls.values()),
            "SAGA_POSTGRES_URL": saga_db,
            "SAGA_TEMPORAL_ADDRESS": temporal.address,
            "SAGA_STATE_DIR": str(state / "harness"),
        }
        monitor = ""
        for name, container in compose["services"].items():
            if container.get("image") != "saga-compare:latest" or "profiles" in container:
                continue
            argv, says = native_command(container["command"])
            env = native_env(container["environment"], addresses)
            log = state / "logs" / f"{name}.log"
            process = ManagedProcess(name, argv, env=env, log_path=log)
            await stack.enter_async_context(process)

            async def ready(process: ManagedProcess = process, says: str = says) -> bool:
                return says in process.log_tail()

            await process.wait_until(ready, what="ready", timeout=90)
            if says.startswith("monitor"):
                monitor = process.log_tail().split("monitor: ", 1)[1].split()[0]
        yield Native(compose, addresses, list(urls.values()), state / "logs", monitor)
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert [p.pid for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


async def test_the_compose_harness_runs_a_scenario_through_the_front_door_on_r3_streams(
    topology: Native,
) -> None:
    harness = topology.compose["services"]["harness"]
    env = native_env(harness["environment"], topology.addresses)

    done = await asyncio.to_thread(
        subprocess.run,
        [str(COMMAND), *harness["command"][1:], "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stderr + topology.tails()
    connection = await nats.connect(servers=topology.nats_urls, **admin_login())
    try:
        info = await connection.jetstream().stream_info(SAGA_STREAM)
    finally:
        await connection.close()
    document = json.loads(done.stdout)
    assert {(r["variant"], r["status"]) for r in document["results"]} == {
        ("choreography", "COMPLETED"),
        ("orchestration", "COMPLETED"),
    }
    assert document["equivalent"] and all(document["invariants"].values())
    assert info.config.num_replicas == 3
    overview = await asyncio.to_thread(read_json, topology.monitor + "api/overview")
    ended = {c["variant"]: sum(c["per_minute"].values()) for c in overview["counters"]}
    assert overview["errors"] == {}
    assert ended["choreography"] >= 1 and ended["orchestration"] >= 1


def read_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)
