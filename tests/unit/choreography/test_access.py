"""Who may say what on the broker: the permissions each NATS user gets, read as the server does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from choreography import access, operator
from choreography.access import (
    ADMIN,
    COMMAND_ROLES,
    FRONT,
    MONITOR,
    Logins,
    permissions,
    read_login,
    roles,
)
from choreography.events import Routing, subject
from choreography.host import TRACKER
from shared.contracts import Action
from shared.definition import SagaDefinition
from shared.definitions import ORDERS_V1, definition_named
from shared.servers import find_binary


def matches(pattern: str, subject_: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest (one token at least)."""
    wanted, given = pattern.split("."), subject_.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(given) > index
        if index >= len(given) or (token != "*" and token != given[index]):
            return False
    return len(wanted) == len(given)


def publishers(definition: SagaDefinition, subject_: str) -> set[str]:
    return {
        role
        for role in roles(definition)
        if any(matches(p, subject_) for p in permissions(definition, role).publish)
    }


@pytest.mark.parametrize("name", ["v1", "voucher"])
def test_each_event_may_be_published_only_by_the_store_that_emits_it(name: str) -> None:
    definition = definition_named(name)
    routing = Routing(definition)
    orders_store = {"orders", TRACKER}
    for kind, meaning in routing.meanings.items():
        published = publishers(definition, subject(kind, "s-1")) - {ADMIN}
        if meaning.step is None:  # the saga's own events: placed, cancel_requested
            assert published == orders_store, kind
            continue
        service = definition.spec.service_of(meaning.step)
        expected = {str(service)} | (orders_store if service == "orders" else set())
        if meaning.role in COMMAND_ROLES:  # the tracker's command to the service
            expected |= orders_store
        assert published == expected, kind


def test_only_the_monitor_may_publish_operator_commands_and_only_the_front_door_orders() -> None:
    for action in Action:
        assert publishers(ORDERS_V1, operator.subject(action, "s-1")) == {MONITOR}, action
    assert publishers(ORDERS_V1, "front.order.place.s-1") == {FRONT}
    assert publishers(ORDERS_V1, "front.order.cancel.s-1") == {FRONT}
    assert publishers(ORDERS_V1, "front.saga.ended.s-1") == {"orders", TRACKER}


def test_a_process_pulls_and_acknowledges_only_its_own_durables() -> None:
    pulls = "$JS.API.CONSUMER.MSG.NEXT.SAGA.payment-x"
    acks = "$JS.ACK.SAGA.payment-x.1.2.3.4.5"
    allowed = permissions(ORDERS_V1, "payment", suffix="-x").publish

    assert any(matches(p, pulls) for p in allowed)
    assert any(matches(p, acks) for p in allowed)
    assert not any(matches(p, "$JS.API.CONSUMER.MSG.NEXT.SAGA.inventory-x") for p in allowed)
    assert not any(matches(p, "$JS.API.STREAM.DELETE.SAGA") for p in allowed)
    assert not any(matches(p, "$JS.API.STREAM.PURGE.SAGA") for p in allowed)


def test_the_front_door_and_the_monitor_cannot_change_the_saga_streams() -> None:
    for role in (FRONT, MONITOR):
        allowed = permissions(ORDERS_V1, role).publish
        for api in ("STREAM.UPDATE.SAGA", "CONSUMER.DURABLE.CREATE.SAGA.x", "STREAM.PURGE.SAGA"):
            assert not any(matches(p, f"$JS.API.{api}") for p in allowed), (role, api)


def test_a_user_of_no_role_is_refused() -> None:
    with pytest.raises(ValueError, match="no NATS user for 'mallory'"):
        permissions(ORDERS_V1, "mallory")


def test_logins_are_kept_owner_only_and_read_back_by_the_next_up(tmp_path: Path) -> None:
    folder = tmp_path / "users"
    first = Logins.kept_in(folder, ORDERS_V1)
    again = Logins.kept_in(folder, ORDERS_V1)

    assert first.passwords == again.passwords
    assert folder.stat().st_mode & 0o777 == 0o700
    for role in roles(ORDERS_V1):
        path = folder / f"{role}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert read_login(path) == first.login(role)


def test_the_generated_config_is_one_nats_server_accepts(tmp_path: Path) -> None:
    config = tmp_path / "auth.conf"
    config.write_text(Logins.generate(definition_named("voucher")).config())

    checked = subprocess.run(
        [str(find_binary("nats-server")), "-c", str(config), "-t"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode == 0, checked.stderr


def test_the_front_doors_floor_grant_names_the_benchmarks_own_stream() -> None:
    from harness.bench.floors import choreography as floor

    assert access.FLOOR_STREAM == floor.FLOOR_STREAM
    assert (access.FLOOR_SUBJECTS,) == floor.FLOOR_SUBJECTS
