"""docker-compose.yml cannot run here (no engine), so each container is checked against the code.

Every saga container's command is parsed with its entry point's own argument parser (the
harness's with its own command line), and its environment with the one settings model, so a
required flag the file lacks, a variable the code ignores, streams without replicas or stores
the harness would not read fail here.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import ValidationError

from choreography import __main__ as choreography_main
from choreography.access import FRONT, MONITOR, compose_config, password_variable, roles
from choreography.host import ChoreographySettings, kinds_of_process
from harness.cli.app import build_app
from harness.deploy.attach import resolve
from harness.session import VARIANTS
from orchestration import worker
from orchestration.server import TemporalSettings
from orchestration.visibility import KEYS
from shared.definitions import ORDERS_V1, definition_named
from shared.servers import find_binary
from shared.settings import Settings, StoreKind
from tests.compose_support import run_env_script

ROOT = Path(__file__).parents[3]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def saga_containers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "saga-compare:latest"
    }


def settings_of(container: dict[str, Any]) -> Settings:
    """The container's environment as its process reads it (nothing from this process)."""
    return Settings.from_environment({k: str(v) for k, v in container["environment"].items()})


def choreography_containers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: c
        for name, c in saga_containers(compose).items()
        if c["command"][:3] == ["python", "-m", "choreography"]
    }


def test_the_cluster_pieces_are_all_there(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    assert {"temporal", "temporal-postgres", "temporal-ui", "jaeger", "otel-collector"} <= names
    assert {"nats-1", "nats-2", "nats-3", "orchestration-worker", "saga-postgres"} <= names
    definitions = {settings_of(c).definition for c in choreography_containers(compose).values()}
    assert len(definitions) == 1
    assert set(kinds_of_process(definition_named(definitions.pop()))) <= names


def test_nats_nodes_form_one_jetstream_cluster_routing_to_each_other(
    compose: dict[str, Any],
) -> None:
    nodes = {f"nats-{i}" for i in (1, 2, 3)}
    for node in nodes:
        command = compose["services"][node]["command"]
        assert "-js" in command
        assert command[command.index("--cluster_name") + 1] == "saga"
        routes = command[command.index("--routes") + 1].split(",")
        assert {r.removeprefix("nats://").removesuffix(":6222") for r in routes} == nodes - {node}


def test_each_choreography_container_runs_one_process_kind_with_its_settings_alone(
    compose: dict[str, Any],
) -> None:
    kinds = []
    definitions = set()
    for container in choreography_containers(compose).values():
        args = choreography_main.parse(container["command"][3:])
        settings = choreography_main.settings_from(args, settings_of(container))

        assert choreography_main.usage_problem(args.service, settings) is None
        assert settings.store is StoreKind.POSTGRES and settings.postgres_url
        assert settings.postgres_schema_prefix == "choreography_"
        nats = ChoreographySettings.from_settings(settings).nats
        assert nats.servers == [f"nats://nats-{i}:4222" for i in (1, 2, 3)]
        assert nats.replicas == 3
        kinds.append(args.service)
        definitions.add(settings.definition)
    # One container per process kind of the one saga definition they all run.
    (definition,) = definitions
    assert sorted(kinds) == sorted(kinds_of_process(definition_named(definition)))


def test_the_worker_container_polls_the_stable_queue_over_its_own_schemas(
    compose: dict[str, Any],
) -> None:
    container = compose["services"]["orchestration-worker"]
    assert container["command"][:3] == ["python", "-m", "orchestration.worker"]
    args = worker.parser().parse_args(container["command"][3:])
    settings = worker.settings_from(args, settings_of(container))

    assert worker.usage_problem(settings) is None
    temporal = TemporalSettings.from_settings(settings)
    assert (temporal.address, temporal.task_queue) == ("temporal:7233", "saga-orders")
    assert settings.store is StoreKind.POSTGRES
    assert settings.postgres_schema_prefix == "orchestration_"


def test_the_harness_only_drives_the_deployment_and_reads_the_stores_the_services_write(
    compose: dict[str, Any],
) -> None:
    harness = compose["services"]["harness"]
    assert harness["command"][0] == "saga-compare"
    group = typer.main.get_command(build_app())
    name, *rest = harness["command"][1:]
    command = group.get_command(group.make_context("saga-compare", [name]), name)  # type: ignore[attr-defined]
    assert command is not None
    command.make_context(name, list(rest))  # raises on an option the command does not take

    deployed = resolve(settings_of(harness), None, list(VARIANTS))

    assert deployed is not None and set(deployed.variants) == set(VARIANTS)
    services = settings_of(choreography_containers(compose)["payment"])
    workers = settings_of(compose["services"]["orchestration-worker"])
    for variant, written_by in (("choreography", services), ("orchestration", workers)):
        read = deployed.variants[variant]
        assert (read.postgres_url, read.postgres_schema_prefix) == (
            written_by.postgres_url,
            written_by.postgres_schema_prefix,
        )


def test_the_monitor_reads_the_projection_where_the_tracker_writes_it(
    compose: dict[str, Any],
) -> None:
    monitor = compose["services"]["monitor"]
    group = typer.main.get_command(build_app())
    context = group.make_context("saga-compare", ["monitor"])
    command = group.get_command(context, "monitor")  # type: ignore[attr-defined]
    command.make_context("monitor", list(monitor["command"][2:]))

    read = settings_of(monitor).for_variant("choreography")
    tracker = settings_of(choreography_containers(compose)["tracker"])
    assert (read.postgres_url, read.postgres_schema_prefix) == (
        tracker.postgres_url,
        tracker.postgres_schema_prefix,
    )


def test_a_replica_count_nats_cannot_use_is_refused() -> None:
    with pytest.raises(ValidationError, match="use 1, 3 or 5"):
        Settings.from_environment({"SAGA_NATS_REPLICAS": "2"})


def test_published_ports_bind_to_loopback_only(compose: dict[str, Any]) -> None:
    for service in compose["services"].values():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_collector_exports_to_jaeger_and_the_image_holds_every_package() -> None:
    collector = yaml.safe_load((ROOT / "deploy" / "otel-collector.yaml").read_text())
    assert collector["exporters"]["otlp/jaeger"]["endpoint"] == "jaeger:4317"
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("shared", "choreography", "orchestration", "harness", "monitor"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_the_saga_search_attributes_are_created_before_the_worker_starts(
    compose: dict[str, Any],
) -> None:
    setup = compose["services"]["temporal-search-attributes"]["command"]
    names = {setup[i + 1] for i, arg in enumerate(setup) if arg == "--name"}
    assert names == {key.name for key in KEYS}
    assert setup[setup.index("--type") + 1] == "Keyword"
    worker_depends = compose["services"]["orchestration-worker"]["depends_on"]
    assert worker_depends["temporal-search-attributes"] == {
        "condition": "service_completed_successfully"
    }


def test_the_nats_nodes_admit_only_the_users_the_code_generates(compose: dict[str, Any]) -> None:
    """Every node loads deploy/nats/saga.conf, and that file is what choreography/access.py
    writes for the definition the containers run (a stale one fails here)."""
    definition = definition_named(
        settings_of(choreography_containers(compose)["payment"]).definition
    )
    committed = (ROOT / "deploy" / "nats" / "saga.conf").read_text()
    assert committed == compose_config(definition)
    for node in (f"nats-{i}" for i in (1, 2, 3)):
        container = compose["services"][node]
        command = container["command"]
        assert command[command.index("-c") + 1] == "/etc/nats/saga.conf"
        assert "./deploy/nats/saga.conf:/etc/nats/saga.conf:ro" in container["volumes"]
        passwords = container["environment"]
        for role in roles(definition):
            assert passwords[password_variable(role)].startswith(
                f"${{SAGA_NATS_PASSWORD_{role.upper()}:?"
            )


def test_each_process_logs_in_to_nats_as_its_own_user(compose: dict[str, Any]) -> None:
    users = {
        name: settings_of(container)
        for name, container in saga_containers(compose).items()
        if settings_of(container).nats_url
    }
    expected: dict[str, str | None] = {name: name for name in choreography_containers(compose)}
    expected |= {"monitor": MONITOR, "harness": FRONT, "orchestration-worker": None}

    assert {name: s.nats_user for name, s in users.items()} == expected
    for name, settings in users.items():
        if expected[name] is None:  # the worker never connects to NATS
            continue
        assert settings.nats_password is not None
        password = settings.nats_password.get_secret_value()
        assert password.startswith(f"${{SAGA_NATS_PASSWORD_{str(expected[name]).upper()}:?")


def test_the_env_scripts_passwords_reach_nats_as_strings(tmp_path: Path) -> None:
    # nats-server parses an environment variable's value as a config value: `-abc` or
    # `0-pQ4...` is a malformed number or date, `12kb` a size. Every password the script
    # writes must start with a letter and be letters and digits, and the broker's config
    # check (`nats-server -t`) must accept it.
    shape = re.compile(r"[A-Za-z][A-Za-z0-9]{23,}")
    for attempt in range(5):
        written = run_env_script(tmp_path / str(attempt))
        assert all(shape.fullmatch(value) for value in written.values()), written
        conf = tmp_path / f"saga-{attempt}.conf"
        conf.write_text(compose_config(ORDERS_V1))
        env = {
            **os.environ,
            **{
                password_variable(r): written[f"SAGA_NATS_PASSWORD_{r.upper()}"]
                for r in roles(ORDERS_V1)
            },
        }
        checked = subprocess.run(
            [find_binary("nats-server"), "-c", str(conf), "-t"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert "is valid" in checked.stdout + checked.stderr, checked.stderr


def test_the_env_script_writes_an_owner_only_password_for_every_user(tmp_path: Path) -> None:
    written = run_env_script(tmp_path)

    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert set(written) == {f"SAGA_NATS_PASSWORD_{r.upper()}" for r in roles(ORDERS_V1)}
    assert all(len(value) >= 24 for value in written.values())
