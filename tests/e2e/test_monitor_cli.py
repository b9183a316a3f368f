"""`saga-compare monitor` as a user runs it: over running servers, front door only."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from choreography.bootstrap import bootstrap
from choreography.broker import NatsBroker
from choreography.host import ChoreographySettings
from orchestration.server import TemporalServer
from shared.definitions import ORDERS_V1
from shared.settings import Settings
from shared.store.factory import open_stores

COMMAND = Path(sys.executable).parent / "saga-compare"
Cli = Any  # the e2e conftest's runner (a fixture; its module is not importable by name)


async def deployed(settings: Settings) -> None:
    """What the choreography's processes make when they start: its stores (migrated) and its
    streams; the monitor, a reader, makes neither."""
    chosen = ChoreographySettings.from_settings(settings)
    async with (
        open_stores(settings.for_variant("choreography")) as stores,
        bootstrap(chosen, stores, ORDERS_V1, every_store=True),
    ):
        pass


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A nats-server and a Temporal dev server, and the stores, as a deployment has them."""
    loop = asyncio.new_event_loop()
    nats = NatsBroker(state_dir=tmp_path_factory.mktemp("nats"))
    temporal = TemporalServer(ui=False)
    loop.run_until_complete(nats.start())
    loop.run_until_complete(temporal.start())
    data = tmp_path_factory.mktemp("data")
    try:
        loop.run_until_complete(deployed(Settings(nats_url=nats.url, data_dir=data)))
        yield {
            "SAGA_NATS_URL": nats.url,
            "SAGA_TEMPORAL_ADDRESS": temporal.address,
            "SAGA_DATA_DIR": str(data),
        }
    finally:
        loop.run_until_complete(temporal.stop())
        loop.run_until_complete(nats.stop())
        loop.close()


def start(cli: Cli, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(COMMAND), "monitor", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cli.cwd,
        env=cli.env(env),
    )


def test_the_monitor_serves_both_styles_of_a_deployment_until_ctrl_c(
    cli: Cli, servers: dict[str, str]
) -> None:
    process = start(cli, servers)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("monitor: http://127.0.0.1:"), line
    url = line.split()[1]

    with urllib.request.urlopen(url + "api/overview", timeout=30) as answer:
        overview = json.load(answer)
    with urllib.request.urlopen(url, timeout=30) as answer:
        page = answer.read().decode()
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=60)

    assert sorted(c["variant"] for c in overview["counters"]) == ["choreography", "orchestration"]
    assert overview["errors"] == {}
    assert "Sagas" in page
    assert process.returncode == 0, errors
    assert "monitor stopped" in errors


def test_the_monitor_with_one_style_configured_shows_that_style(
    cli: Cli, servers: dict[str, str]
) -> None:
    only = {"SAGA_TEMPORAL_ADDRESS": servers["SAGA_TEMPORAL_ADDRESS"]}
    process = start(cli, only)
    assert process.stdout is not None
    url = process.stdout.readline().split()[1]
    with urllib.request.urlopen(url + "api/overview", timeout=30) as answer:
        overview = json.load(answer)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)

    assert [c["variant"] for c in overview["counters"]] == ["orchestration"]
    assert process.returncode == 0


def test_without_a_deployment_the_monitor_says_what_to_set(cli: Cli) -> None:
    result = cli("monitor")

    cli.assert_one_line_error(result, "no deployment to watch", "SAGA_TEMPORAL_ADDRESS")


def test_a_deployment_whose_stores_were_never_made_is_refused_and_nothing_is_made(
    cli: Cli, servers: dict[str, str], tmp_path: Path
) -> None:
    empty = tmp_path / "data"
    empty.mkdir()
    result = cli("monitor", env={**servers, "SAGA_DATA_DIR": str(empty)})

    cli.assert_one_line_error(result, "store orders", "start the processes that own it")
    assert list(empty.rglob("*")) == []


def test_a_port_in_use_is_one_line(cli: Cli, servers: dict[str, str]) -> None:
    taken = servers["SAGA_NATS_URL"].rsplit(":", 1)[1]
    result = cli("monitor", "--port", taken, env=servers)

    cli.assert_one_line_error(result, f"cannot listen on 127.0.0.1:{taken}", "--port")


def test_a_bad_monitor_setting_is_one_line(cli: Cli, servers: dict[str, str]) -> None:
    env = {**servers, "SAGA_MONITOR_TRACE_URL": "javascript:alert(1)"}
    result = cli("monitor", env=env)

    cli.assert_one_line_error(result, "SAGA_MONITOR_TRACE_URL")
    assert os.listdir(cli.cwd) == [] and isinstance(cli.cwd, Path)


def test_the_monitor_listening_on_another_loopback_address_answers_there(
    cli: Cli, servers: dict[str, str]
) -> None:
    process = start(cli, servers, "--host", "127.0.0.2")
    assert process.stdout is not None
    url = process.stdout.readline().split()[1]
    try:
        with urllib.request.urlopen(url + "api/overview", timeout=30) as answer:
            status, overview = answer.status, json.load(answer)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)

    assert url.startswith("http://127.0.0.2:")
    assert status == 200 and overview["errors"] == {}
