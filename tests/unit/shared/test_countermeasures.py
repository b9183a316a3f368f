"""The countermeasures' switches: parsed from SAGA_COUNTERMEASURES over the defaults, refused in one
line when a name is wrong, and given to every service a Domain builds."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.countermeasures import NAMES, Countermeasures
from shared.definitions import ORDERS_V1
from shared.services import Domain
from shared.store import sqlite_stores
from shared.validation import InvalidInput, load_settings


def test_the_defaults_are_what_the_services_did_before_the_switches_plus_the_points_lock() -> None:
    assert Countermeasures().off == ("reread_value",)
    assert Countermeasures.parse("") == Countermeasures()


def test_terms_turn_switches_on_and_off_over_the_defaults() -> None:
    chosen = Countermeasures.parse("-version_file, reread_value")

    assert not chosen.version_file and chosen.reread_value
    assert chosen.text == "reread_value,-version_file"
    assert Countermeasures.parse(chosen.text) == chosen


def test_none_and_all_set_every_switch_before_the_other_terms() -> None:
    assert Countermeasures.parse("none").off == NAMES
    assert Countermeasures.parse("none,by_value").off == tuple(n for n in NAMES if n != "by_value")
    assert Countermeasures.parse("all").off == ()


def test_an_unknown_countermeasure_in_the_settings_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SAGA_COUNTERMEASURES", "-semantic_lock")

    with pytest.raises(InvalidInput) as refused:
        load_settings()

    message = str(refused.value)
    assert message.startswith("SAGA_COUNTERMEASURES='-semantic_lock': ")
    assert "unknown countermeasure '-semantic_lock'; use commutative_updates" in message
    assert "\n" not in message


def test_a_domain_gives_its_countermeasures_to_every_service(tmp_path: Path) -> None:
    chosen = Countermeasures.only_off("order_lock", "version_file")
    domain = Domain(sqlite_stores(tmp_path), ORDERS_V1, countermeasures=chosen)

    assert {s.countermeasures for s in domain.services.values()} == {chosen}
    assert domain.orders.complete.__name__ == "complete_blind"
    assert domain.inventory.mark.__name__ == "no_tombstone"


async def test_a_service_whose_countermeasure_reads_another_service_opens_its_store_too(
    tmp_path: Path,
) -> None:
    locked = await Domain(sqlite_stores(tmp_path / "a"), ORDERS_V1).open(only=["points"])
    by_reference = Countermeasures.only_off("by_value")
    priced = Domain(sqlite_stores(tmp_path / "b"), ORDERS_V1, countermeasures=by_reference)
    await priced.open(only=["payment"])
    await locked.close()
    await priced.close()

    assert sorted(p.name for p in (tmp_path / "a").glob("*.db")) == ["orders.db", "points.db"]
    assert sorted(p.name for p in (tmp_path / "b").glob("*.db")) == ["inventory.db", "payment.db"]
