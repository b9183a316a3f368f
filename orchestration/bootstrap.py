"""The orchestration's one composition root: server, stores, client, worker, by injection.

Every process of the variant is built here: the worker process (``python -m
orchestration.worker``), the harness's front door (a client only, every store opened for
seeding and reading), the embedded runtime (both, over an embedded dev server), and a reader
of a running cluster (`reader`: the monitor, a client and nothing else). The
worker polls the task queue the settings name, so a worker started after another died resumes
the sagas in flight.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from orchestration.activities import VARIANT, SagaActivities
from orchestration.client import check_search_attributes, connect, for_component
from orchestration.interceptors import HeldDefinition
from orchestration.server import TemporalServer, TemporalSettings
from orchestration.versioning import adopt_if_unset, build_id, deployment_config, versioned
from orchestration.workflows import workflow_for
from shared.admission import PolicyLimits
from shared.countermeasures import DEFAULT, Countermeasures
from shared.definition import SagaDefinition
from shared.hooks import NO_HOOKS, Hooks
from shared.services import Domain
from shared.steps import Chain
from shared.store import StoreFactory
from shared.telemetry import WORKER, Tracing, service_scope

DEV_SERVER_CONFIG: Mapping[str, object] = {
    # The history service reads each shard's task queues at most 20 times a second by default;
    # the dev server has one shard, so every workflow task waited up to 50 ms to be dispatched.
    "history.transferProcessorMaxPollRPS": 1000,
    "history.timerProcessorMaxPollRPS": 1000,
    "history.visibilityProcessorMaxPollRPS": 1000,
    # Timers (retry backoffs, the deadline) fired up to 1 s late: the timer queue's default
    # look-ahead shift is 1 s, so a 50 ms backoff cost a whole second.
    "history.timerProcessorMaxTimeShift": "10ms",
    # One partition per task queue: no forwarding between partitions on a one-node server.
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}
"""Dynamic config for the embedded dev server; figures in docs/temporal-latency.md."""


@dataclass(frozen=True)
class Orchestration:
    """What a process of the variant holds: the resolved settings and what was built."""

    settings: TemporalSettings
    client: Client
    domain: Domain
    ui_url: str | None = None
    server: TemporalServer | None = None


WORKER_TUNING: Mapping[str, Any] = {
    # Shutdown waits this long for running activities before cancelling them.
    "graceful_shutdown_timeout": timedelta(seconds=2),
    # A dead worker's cached sagas move to another worker after this (default 10 s).
    "sticky_queue_schedule_to_start_timeout": timedelta(seconds=2),
}
"""Worker options every saga worker runs with: the saga's, the benchmark's floor and the
calibration's workers alike (docs/temporal-latency.md measures the alternatives)."""


SANDBOXES = ("full", "passthrough", "off")
SAGA_SANDBOX = "passthrough"
"""The saga's setting, chosen on measurements (docs/benchmarks.md, scripts/sandbox_cost.py)."""


def build_worker(
    client: Client,
    task_queue: str,
    domain: Domain,
    middleware: Chain = (),
    limits: PolicyLimits | None = None,
    *,
    versioning: str = "patched",
) -> Worker:
    """A worker running the saga workflow and its activities over one Domain; it refuses
    workflows of a saga definition the domain's does not understand, runs the workflow code
    of that definition's release as ``versioning`` says (docs/versioning.md), and its first
    activity refuses orders the records or ``limits`` (on a saga's policy) contradict."""
    activities = SagaActivities(domain, middleware, VARIANT, limits=limits)
    return saga_worker(
        client, task_queue, activities.all(), definition=domain.definition, versioning=versioning
    )


def saga_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Callable[..., Any]],
    *,
    sandbox: str = SAGA_SANDBOX,
    definition: SagaDefinition | None = None,
    versioning: str = "patched",
) -> Worker:
    """The saga workflow's worker with these activities (the benchmark's floor: no-ops).

    ``sandbox`` picks the workflow runner (docs/benchmarks.md measures each): ``full``
    (Temporal's default sandbox), ``passthrough`` (the saga's: the sandbox's restrictions on
    non-deterministic calls, but every module imported once, not again for each workflow run)
    or ``off``. With a definition, its release's workflow code, and with ``versioning``
    ``pinned`` or ``auto-upgrade`` the worker is a version of the deployment named like the
    task queue (orchestration/versioning.py).
    """
    release = definition.release if definition is not None else 1
    config = deployment_config(task_queue, definition, versioning) if definition else None
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[workflow_for(release, versioning)],
        deployment_config=config,
        activities=activities,
        interceptors=[HeldDefinition(definition)] if definition is not None else [],
        workflow_runner=workflow_runner(sandbox),
        **WORKER_TUNING,
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


@asynccontextmanager
async def reader(settings: TemporalSettings) -> AsyncIterator[Client]:
    """A client of the cluster the settings name, changing nothing in it: no server, no
    stores (the saga's state is the workflows'), no worker; the saga's search attributes must
    be registered already."""
    if settings.address is None:
        raise ValueError("a reader watches a running cluster: set SAGA_TEMPORAL_ADDRESS")
    client = await connect(settings.address, settings.namespace)
    await check_search_attributes(client)
    yield client


@asynccontextmanager
async def bootstrap(
    settings: TemporalSettings,
    stores: StoreFactory,
    definition: SagaDefinition,
    *,
    tracing: Tracing | None = None,
    run_worker: bool = False,
    hooks: Hooks = NO_HOOKS,
    server_state_dir: Path | None = None,
    ui: bool = False,
    dynamic_config: Mapping[str, object] | None = None,
    versioning: str = "patched",
    countermeasures: Countermeasures = DEFAULT,
) -> AsyncIterator[Orchestration]:
    """Build the variant and, with ``run_worker``, a worker on the settings' task queue whose
    steps run through ``hooks.step`` (none in production) and whose services apply
    ``countermeasures``. A versioned worker (``versioning`` ``pinned`` or ``auto-upgrade``)
    makes its version current when the deployment has none.

    With no address in the settings an embedded dev server runs for the block (in memory,
    or on a file in ``server_state_dir``); a server given by address must already have the
    saga's search attributes.
    """
    async with AsyncExitStack() as stack:
        server = None
        ui_url = None
        if settings.embedded:
            server = TemporalServer(
                state_dir=server_state_dir,
                ui=ui,
                namespace=settings.namespace,
                dynamic_config=DEV_SERVER_CONFIG if dynamic_config is None else dynamic_config,
            )
            await stack.enter_async_context(server)
            ui_url = server.ui_url
            settings = replace(settings, address=server.address)
        assert settings.address is not None
        domain = await Domain(stores, definition, countermeasures=countermeasures).open()
        stack.push_async_callback(domain.close)
        client = await connect(settings.address, settings.namespace, tracing=tracing)
        if server is None:
            await check_search_attributes(client)
        if run_worker:
            worker = build_worker(
                for_component(client, tracing, WORKER),
                settings.task_queue,
                domain,
                hooks.step,
                settings.limits,
                versioning=versioning,
            )
            with service_scope(WORKER):  # the worker's tasks (activities) inherit the scope
                await stack.enter_async_context(worker)
            if versioned(versioning):
                await adopt_if_unset(client, settings.task_queue, build_id(definition))
        yield Orchestration(settings, client, domain, ui_url, server)
