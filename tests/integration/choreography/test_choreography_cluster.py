"""The choreography on a 3-node JetStream cluster (R3 streams), selected by settings only.

The same `nats-server` binary the embedded default uses, run three times with routes
between them: what docker-compose.yml describes, exercised natively.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from choreography.broker import (
    ADVISORY_STREAM,
    DLQ_STREAM,
    SAGA_STREAM,
    NatsSettings,
    ensure_streams,
)
from choreography.host import ChoreographySettings
from harness.compare.runner import run_scenario
from harness.compare.scenarios import get
from shared.contracts import SagaStatus
from shared.servers import LOOPBACK, ManagedProcess, find_binary, free_port
from tests.integration.choreography.choreography_support import open_faulty

pytestmark = pytest.mark.slow  # starts and kills real server processes


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[str]]:
    clients = [free_port() for _ in range(3)]
    routes = [free_port() for _ in range(3)]
    processes = []
    for i in range(3):
        others = ",".join(f"nats://{LOOPBACK}:{routes[j]}" for j in range(3) if j != i)
        argv: list[str | Path] = [
            find_binary("nats-server"),
            "-js",
            "-a",
            LOOPBACK,
            "-p",
            str(clients[i]),
            "-sd",
            str(tmp_path / f"n{i}"),
            "--server_name",
            f"n{i}",
            "--cluster_name",
            "saga",
            "--cluster",
            f"nats://{LOOPBACK}:{routes[i]}",
            "--routes",
            others,
        ]
        process = ManagedProcess(f"nats-{i}", argv)
        await process.start()
        processes.append(process)
    try:
        for process, port in zip(processes, clients, strict=True):
            await process.wait_for_port(port)
        urls = [f"nats://{LOOPBACK}:{port}" for port in clients]
        await _wait_for_meta_leader(urls)
        yield urls
    finally:
        for process in processes:
            await process.stop()


async def _wait_for_meta_leader(urls: list[str]) -> None:
    """Until the cluster places a three-replica stream: a leader is elected *and* every peer
    has joined (a leader alone answers account info, but an R3 stream then fails with 'no
    suitable peers for placement', as seen under load)."""
    connection = await nats.connect(servers=urls)
    probe = StreamConfig(name="PLACEMENT_PROBE", subjects=["probe.placement"], num_replicas=3)
    try:
        for _ in range(300):
            try:
                js = connection.jetstream()
                await js.add_stream(probe)
                await js.delete_stream("PLACEMENT_PROBE")
                return
            except Exception:
                await asyncio.sleep(0.1)
        raise TimeoutError("the JetStream cluster never placed a three-replica stream")
    finally:
        await connection.close()


async def test_a_saga_runs_on_a_three_node_cluster_with_streams_that_stay_replicated(
    cluster: list[str], tmp_path: Path
) -> None:
    settings = ChoreographySettings(nats=NatsSettings(url=",".join(cluster), replicas=3))

    async with open_faulty(tmp_path / "data", settings) as runtime:
        run = await run_scenario(runtime, get("shipment_failed"))

    assert run.sagas[0].outcome.status is SagaStatus.COMPENSATED
    assert all(run.invariants.values())
    connection = await nats.connect(servers=cluster)
    try:
        info = await connection.jetstream().stream_info(SAGA_STREAM)
        # A process configured without SAGA_NATS_REPLICAS must not shrink the streams.
        again = await ensure_streams(connection.jetstream(), replicas=1)
    finally:
        await connection.close()
    assert info.config.num_replicas == 3
    assert info.cluster is not None and len(info.cluster.replicas or []) == 2
    assert {name: s.config.num_replicas for name, s in again.items()} == {
        SAGA_STREAM: 3,
        DLQ_STREAM: 3,
        ADVISORY_STREAM: 3,
    }
