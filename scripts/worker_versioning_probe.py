"""Worker Versioning on the embedded dev server, checked: what docs/versioning.md says of it.

    .venv/bin/python scripts/worker_versioning_probe.py \
        > docs/versioning-run/worker-versioning-probe.txt

For each dev server configuration (no dynamic-config value at all, then the project's
DEV_SERVER_CONFIG) and on a task queue of its own each time, a toy workflow that waits for a
signal is started on version 1 of a worker deployment, version 2 is started beside it and
made current, and the signal sent:

1. PINNED: the workflow finishes on version 1; with version 1's worker gone it waits, and
   finishes once a version-1 worker polls again;
2. AUTO_UPGRADE: signalled at once after the new current version was set, and signalled
   after the server said the routing change propagated: on which version its next task ran.

The behaviour is set by the worker (``WorkerDeploymentConfig.default_versioning_behavior``),
not by the workflow's decorator, as the saga's workers do (orchestration/versioning.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Mapping

from temporalio import workflow
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError
from temporalio.worker import Worker, WorkerDeploymentConfig

from orchestration.bootstrap import DEV_SERVER_CONFIG
from orchestration.server import TemporalServer
from orchestration.versioning import MadeCurrent, set_current

WAIT_FOR_A_GONE_VERSION_S = 8.0


@workflow.defn(name="Probe", sandboxed=False)  # a probe: no sandbox to validate it in
class Probe:
    def __init__(self) -> None:
        self.go = False

    @workflow.run
    async def run(self) -> list[str]:
        first = workflow.info().get_current_build_id()
        await workflow.wait_condition(lambda: self.go)
        return [first, workflow.info().get_current_build_id()]

    @workflow.signal
    def proceed(self) -> None:
        self.go = True


def worker(client: Client, queue: str, build: str, behavior: VersioningBehavior) -> Worker:
    version = WorkerDeploymentVersion(deployment_name=queue, build_id=build)
    config = WorkerDeploymentConfig(
        version=version, use_worker_versioning=True, default_versioning_behavior=behavior
    )
    return Worker(client, task_queue=queue, workflows=[Probe], deployment_config=config)


async def pinned(client: Client) -> None:
    queue = f"probe-{uuid.uuid4().hex[:6]}"
    async with worker(client, queue, "v1", VersioningBehavior.PINNED):
        made = await set_current(client, queue, "v1")
        print(f"  first version made current in {made.seconds:.1f} s ({_how(made)})")
        handle = await client.start_workflow(Probe.run, id=f"pin-{queue}", task_queue=queue)
        async with worker(client, queue, "v2", VersioningBehavior.PINNED):
            await set_current(client, queue, "v2")
            await handle.signal(Probe.proceed)
            print(f"  PINNED, both versions polling: ran on {await handle.result()}")
    gone = await client.start_workflow(Probe.run, id=f"pin2-{queue}", task_queue=queue)
    async with worker(client, queue, "v2", VersioningBehavior.PINNED):
        await gone.signal(Probe.proceed)
        print(f"  a workflow started while v2 is current: ran on {await gone.result()}")
    async with worker(client, queue, "v1", VersioningBehavior.PINNED):
        await set_current(client, queue, "v1")
        later = await client.start_workflow(Probe.run, id=f"pin3-{queue}", task_queue=queue)
        await asyncio.sleep(1.0)
    async with worker(client, queue, "v2", VersioningBehavior.PINNED):
        await set_current(client, queue, "v2")
        await later.signal(Probe.proceed)
        try:
            result = await asyncio.wait_for(later.result(), WAIT_FOR_A_GONE_VERSION_S)
            print(f"  PINNED to v1, only a v2 worker left: ran on {result}")
        except TimeoutError:
            print(
                f"  PINNED to v1, only a v2 worker left: still waiting after "
                f"{WAIT_FOR_A_GONE_VERSION_S:g} s"
            )
        async with worker(client, queue, "v1", VersioningBehavior.PINNED):
            print(f"  ... a v1 worker polls again: ran on {await later.result()}")


async def auto_upgrade(client: Client, wait_for_propagation: bool) -> None:
    queue = f"probe-{uuid.uuid4().hex[:6]}"
    async with worker(client, queue, "v1", VersioningBehavior.AUTO_UPGRADE):
        await set_current(client, queue, "v1")
        handle = await client.start_workflow(Probe.run, id=f"auto-{queue}", task_queue=queue)
        await asyncio.sleep(1.0)
        async with worker(client, queue, "v2", VersioningBehavior.AUTO_UPGRADE):
            if wait_for_propagation:
                made = await set_current(client, queue, "v2")
                when = f"after the propagation ({made.seconds:.1f} s, {_how(made)})"
            else:
                while True:  # accepted once a v2 worker polled; no wait for the propagation
                    try:
                        await client.workflow_service.set_worker_deployment_current_version(
                            _request(client, queue, "v2")
                        )
                        break
                    except RPCError:
                        await asyncio.sleep(0.2)
                when = "at once after setting the current version"
            await handle.signal(Probe.proceed)
            print(f"  AUTO_UPGRADE signalled {when}: ran on {await handle.result()}")


def _how(made: MadeCurrent) -> str:
    """How the routing was seen: the deployment's report, or only the task queue's own."""
    return f"reported complete: {made.propagated}, routed: {made.routed}"


def _request(client: Client, queue: str, build: str) -> SetWorkerDeploymentCurrentVersionRequest:
    return SetWorkerDeploymentCurrentVersionRequest(
        namespace=client.namespace, deployment_name=queue, build_id=build, identity="probe"
    )


async def main() -> None:
    configs: Mapping[str, Mapping[str, object]] = {
        "no dynamic-config value": {},
        "DEV_SERVER_CONFIG (the project's)": DEV_SERVER_CONFIG,
    }
    for name, config in configs.items():
        started = time.monotonic()
        async with TemporalServer(ui=False, dynamic_config=config) as server:
            client = await Client.connect(server.address)
            print(f"dev server with {name}:")
            await pinned(client)
            for _ in range(2):
                await auto_upgrade(client, wait_for_propagation=False)
                await auto_upgrade(client, wait_for_propagation=True)
        print(f"  ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    asyncio.run(main())
