"""docker-compose.yml cannot run here (no engine), so its shape is checked against the code."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from choreography.broker import NatsSettings
from orchestration.server import TemporalSettings
from orchestration.visibility import KEYS
from shared.contracts import ServiceName
from shared.servers import ServerError

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


def runnable(module: str) -> bool:
    """Whether `python -m module` would find code to run (a package needs __main__)."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def test_the_cluster_pieces_are_all_there(compose: dict[str, Any]) -> None:
    names = set(compose["services"])
    assert {"temporal", "temporal-postgres", "temporal-ui", "jaeger", "otel-collector"} <= names
    assert {"nats-1", "nats-2", "nats-3", "orchestration-worker"} <= names
    assert {s.value for s in ServiceName} <= names


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


def test_every_saga_container_runs_an_existing_entry_point(compose: dict[str, Any]) -> None:
    containers = saga_containers(compose)
    services = []
    for service in containers.values():
        command = service["command"]
        if command[:2] == ["python", "-m"]:
            assert runnable(command[2]), command
        if command[2:3] == ["choreography"]:
            services.append(command[command.index("--service") + 1])
    assert sorted(services) == sorted(s.value for s in ServiceName)


def test_settings_are_read_from_the_containers_environment(compose: dict[str, Any]) -> None:
    env = {k: str(v) for k, v in compose["x-saga"]["environment"].items()}

    temporal = TemporalSettings.from_env(env)
    nats = NatsSettings.from_env(env)

    assert temporal.address == "temporal:7233" and not temporal.embedded
    assert nats.servers == [f"nats://nats-{i}:4222" for i in (1, 2, 3)]
    assert nats.replicas == 3


def test_a_replica_count_nats_cannot_use_is_refused() -> None:
    with pytest.raises(ServerError, match="SAGA_NATS_REPLICAS='2'"):
        NatsSettings.from_env({"SAGA_NATS_REPLICAS": "2"})


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
    worker = compose["services"]["orchestration-worker"]["depends_on"]
    assert worker["temporal-search-attributes"] == {"condition": "service_completed_successfully"}
