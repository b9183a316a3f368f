"""`up` on a busy machine: a port taken between choosing it and binding it is chosen again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.deploy import updown
from shared.servers import ServerError
from shared.settings import StoreKind

TAKEN = "port 4242 on 127.0.0.1 is already in use (the Temporal Web UI needs it); stop it"


async def test_a_port_taken_before_its_server_bound_it_is_chosen_again(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    failures = [ServerError(TAKEN)]
    started = object()
    discarded: list[bool] = []

    async def spawn(
        state_dir: Path, store: StoreKind, fresh: bool, chaos: bool, definition: str
    ) -> Any:
        discarded.append(fresh)
        if failures:
            raise failures.pop()
        return started

    monkeypatch.setattr(updown, "_spawn", spawn)

    assert await updown.start(tmp_path, StoreKind.SQLITE, fresh=True) == (started, True)
    assert discarded == [True, False]  # the retry keeps what the first start created


async def test_other_failures_and_a_port_taken_every_time_are_reported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[str] = []

    async def taken(
        state_dir: Path, store: StoreKind, fresh: bool, chaos: bool, definition: str
    ) -> Any:
        calls.append("taken")
        raise ServerError(TAKEN)

    monkeypatch.setattr(updown, "_spawn", taken)
    with pytest.raises(ServerError, match="already in use"):
        await updown.start(tmp_path, StoreKind.SQLITE)
    assert len(calls) == updown.PORT_ATTEMPTS

    async def broken(
        state_dir: Path, store: StoreKind, fresh: bool, chaos: bool, definition: str
    ) -> Any:
        calls.append("broken")
        raise ServerError("nats-server exited with code 1")

    monkeypatch.setattr(updown, "_spawn", broken)
    with pytest.raises(ServerError, match="exited"):
        await updown.start(tmp_path, StoreKind.SQLITE)
    assert calls.count("broken") == 1
