"""The saga worker: `python -m orchestration.worker` runs one against any server until SIGTERM.

Configuration comes from the environment only: SAGA_TEMPORAL_ADDRESS (required here),
SAGA_TEMPORAL_NAMESPACE, SAGA_TEMPORAL_TASK_QUEUE, SAGA_DATA_DIR (the services' SQLite
files), and tracing through OTEL_EXPORTER_OTLP_ENDPOINT or SAGA_TRACE_FILE (JSON lines).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from orchestration.activities import VARIANT, SagaActivities
from orchestration.client import check_search_attributes, connect
from orchestration.server import TemporalSettings
from orchestration.workflows import OrderSagaWorkflow
from shared.servers import ServerError
from shared.services import Domain
from shared.store import sqlite_stores
from shared.telemetry import WORKER, configure_tracing

log = logging.getLogger("orchestration.worker")

SANDBOXES = ("full", "passthrough", "off")
SAGA_SANDBOX = "passthrough"
"""The saga's setting, chosen on measurements (docs/benchmarks.md, scripts/sandbox_cost.py)."""


def build_worker(client: Client, task_queue: str, domain: Domain) -> Worker:
    """A worker running the saga workflow and its activities over one Domain."""
    return saga_worker(client, task_queue, SagaActivities(domain, VARIANT).all())


def saga_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    *,
    sandbox: str = SAGA_SANDBOX,
) -> Worker:
    """The saga workflow's worker with these activities (the benchmark's floor: no-ops).

    ``sandbox`` picks the workflow runner (docs/benchmarks.md measures each): ``full``
    (Temporal's default sandbox), ``passthrough`` (the saga's: the sandbox's restrictions on
    non-deterministic calls, but every module imported once, not again for each workflow run)
    or ``off``.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[OrderSagaWorkflow],
        activities=activities,
        workflow_runner=workflow_runner(sandbox),
        # Shutdown waits this long for running activities before cancelling them.
        graceful_shutdown_timeout=timedelta(seconds=2),
        # A dead worker's cached sagas move to another worker after this (default 10 s).
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=2),
    )


def workflow_runner(sandbox: str) -> WorkflowRunner:
    """The runner for a sandbox setting (see `saga_worker`)."""
    if sandbox == "off":
        return UnsandboxedWorkflowRunner()
    if sandbox == "passthrough":
        restrictions = SandboxRestrictions.default.with_passthrough_all_modules()
        return SandboxedWorkflowRunner(restrictions=restrictions)
    if sandbox == "full":
        return SandboxedWorkflowRunner()
    raise ValueError(f"unknown sandbox setting {sandbox!r}; use one of {', '.join(SANDBOXES)}")


async def serve(env: Mapping[str, str]) -> None:
    """Run a worker until SIGTERM or SIGINT, then shut it down gracefully."""
    settings = TemporalSettings.from_env(env)
    if settings.address is None:
        raise SystemExit("error: set SAGA_TEMPORAL_ADDRESS to the Temporal frontend (host:port)")
    trace_file = env.get("SAGA_TRACE_FILE")
    tracing = configure_tracing(WORKER)  # service.name order-saga-worker
    tracing.attach(jsonl=Path(trace_file) if trace_file else None)
    domain = await Domain(sqlite_stores(Path(env.get("SAGA_DATA_DIR", "data")))).open()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            client = await connect(
                settings.address, settings.namespace, tracing=tracing, component=WORKER
            )
        except RuntimeError:
            raise SystemExit(
                f"error: cannot reach Temporal at {settings.address}; start the server"
                " or fix SAGA_TEMPORAL_ADDRESS"
            ) from None
        try:
            await check_search_attributes(client)
        except ServerError as error:
            raise SystemExit(f"error: {error}") from None
        async with build_worker(client, settings.task_queue, domain):
            log.info("worker on %s, task queue %s", settings.address, settings.task_queue)
            await stop.wait()
    finally:
        await domain.close()
        tracing.shutdown()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(serve(os.environ))


if __name__ == "__main__":
    main()
