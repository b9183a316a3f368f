"""Every process entry point reads the one settings model; its flags only override it."""

from __future__ import annotations

from pathlib import Path

from choreography import __main__ as choreography_main
from orchestration import worker
from shared.settings import Settings, StoreKind


def test_a_service_process_takes_everything_from_the_environment() -> None:
    env = {
        "SAGA_DATA_DIR": "/srv/choreography",
        "SAGA_STORE": "postgres",
        "SAGA_POSTGRES_URL": "postgresql://db/saga",
        "SAGA_POSTGRES_SCHEMA_PREFIX": "choreography_",
        "SAGA_NATS_URL": "nats://n1:4222,nats://n2:4222",
        "SAGA_NATS_REPLICAS": "3",
    }
    args = choreography_main.parse(["--service", "payment"])

    settings = choreography_main.settings_from(args, Settings.from_environment(env))

    assert settings.data_dir == Path("/srv/choreography")
    assert settings.store is StoreKind.POSTGRES
    assert settings.postgres_schema_prefix == "choreography_"
    assert settings.nats_servers == ["nats://n1:4222", "nats://n2:4222"]
    assert settings.nats_replicas == 3


def test_a_service_process_flag_overrides_its_variable() -> None:
    base = Settings.from_environment({"SAGA_DATA_DIR": "/env", "SAGA_NATS_URL": "nats://env:1"})
    args = choreography_main.parse(["--service", "tracker", "--data-dir", "/flag"])

    settings = choreography_main.settings_from(args, base)

    assert (settings.data_dir, settings.nats_url) == (Path("/flag"), "nats://env:1")


def test_the_tracker_is_a_process_kind_of_its_own_and_the_kinds_come_from_the_definition() -> None:
    settings = Settings(nats_url="nats://env:1")
    assert choreography_main.usage_problem("tracker", settings) is None
    problem = choreography_main.usage_problem("relay", settings)
    assert problem is not None
    assert "not a process kind of saga definition 'v1'" in problem
    assert "inventory, payment, points, shipping, orders, tracker, all" in problem
    voucher = settings.model_copy(update={"definition": "voucher"})
    assert choreography_main.usage_problem("voucher", voucher) is None
    assert choreography_main.usage_problem("voucher", settings) is not None


def test_the_worker_reads_its_task_queue_and_store_from_the_environment() -> None:
    env = {
        "SAGA_TEMPORAL_ADDRESS": "temporal:7233",
        "SAGA_TEMPORAL_TASK_QUEUE": "orders",
        "SAGA_STORE": "postgres",
        "SAGA_POSTGRES_URL": "postgresql://db/saga",
        "SAGA_POSTGRES_SCHEMA_PREFIX": "orchestration_",
    }
    args = worker.parser().parse_args(["--namespace", "sagas"])

    settings = worker.settings_from(args, Settings.from_environment(env))

    assert settings.temporal_address == "temporal:7233"
    assert (settings.temporal_namespace, settings.temporal_task_queue) == ("sagas", "orders")
    assert settings.postgres_schema_prefix == "orchestration_"


def test_each_variant_keeps_its_own_stores_in_one_deployment() -> None:
    base = Settings.from_environment({"SAGA_DATA_DIR": "/state"})

    assert base.for_variant("choreography").data_dir == Path("/state/choreography")
    assert base.for_variant("orchestration").postgres_schema_prefix == "orchestration_"


def test_settings_become_the_variables_a_child_process_reads() -> None:
    env = {"SAGA_NATS_URL": "nats://a:1", "SAGA_HOOKS": "shared.faults.deployment:chaos_hooks"}
    settings = Settings.from_environment(env)

    again = Settings.from_environment(settings.environment())

    assert again.model_dump() == settings.model_dump()
    assert "SAGA_TEMPORAL_ADDRESS" not in settings.environment()
