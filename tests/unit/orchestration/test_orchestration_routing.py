"""When a new current version counts as routed (orchestration/versioning.py `until_routed`).

The server's side is faked here: the deployment's report of the propagation, and each task
queue type's own routing, as the two describe calls return them. The stuck report itself was
seen on the real dev server (docs/versioning.md); it cannot be produced at will.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.api.enums.v1 import RoutingConfigUpdateState
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
    DescribeTaskQueueResponse,
    DescribeWorkerDeploymentResponse,
)

from orchestration import versioning

V1, V2 = "orders.v1.a", "orders.v2.b"
IN_PROGRESS = RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_IN_PROGRESS
COMPLETED = RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED


@dataclass
class FakeService:
    """The deployment's routing and report; each task queue type's current version."""

    current: str
    state: RoutingConfigUpdateState.ValueType
    queues: dict[int, str] = field(default_factory=dict)

    async def describe_worker_deployment(self, request: Any) -> DescribeWorkerDeploymentResponse:
        found = DescribeWorkerDeploymentResponse()
        info = found.worker_deployment_info
        info.routing_config.current_deployment_version.build_id = self.current
        info.routing_config_update_state = self.state
        return found

    async def describe_task_queue(self, request: DescribeTaskQueueRequest) -> Any:
        found = DescribeTaskQueueResponse()
        build = self.queues.get(request.task_queue_type, "")
        found.versioning_info.current_deployment_version.build_id = build
        return found


@dataclass
class FakeClient:
    workflow_service: FakeService
    namespace: str = "default"


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(versioning, "POLL_S", 0.01)
    monkeypatch.setattr(versioning, "REPORT_GRACE_S", 0.3)


def both_types(build: str) -> dict[int, str]:
    return {kind: build for kind in versioning.QUEUE_TYPES}


async def routed(service: FakeService, timeout_s: float = 5.0) -> tuple[bool, bool, float]:
    started = time.monotonic()
    client: Any = FakeClient(service)
    propagated, seen = await versioning.until_routed(client, "q", V2, timeout_s=timeout_s)
    return propagated, seen, time.monotonic() - started


async def test_a_deployment_that_reports_the_propagation_complete_is_routed_at_once() -> None:
    propagated, seen, took = await routed(FakeService(V2, COMPLETED))

    assert (propagated, seen) == (True, True)
    assert took < 0.3


async def test_a_report_stuck_in_progress_gives_way_to_the_task_queue_after_the_grace() -> None:
    propagated, seen, took = await routed(FakeService(V2, IN_PROGRESS, both_types(V2)))

    assert (propagated, seen) == (False, True)
    assert 0.3 <= took < 5.0


async def test_a_task_queue_whose_activity_tasks_still_go_to_v1_is_not_routed() -> None:
    queues = both_types(V2) | {versioning.QUEUE_TYPES[1]: V1}
    propagated, seen, took = await routed(FakeService(V2, IN_PROGRESS, queues), timeout_s=1.0)

    assert (propagated, seen) == (False, False)
    assert took >= 1.0
