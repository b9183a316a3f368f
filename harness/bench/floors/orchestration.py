"""The orchestration's floor: the saga workflow itself, with every activity a no-op.

What Temporal costs per saga when the services do nothing: the real `OrderSagaWorkflow`
(so the same workflow code, sandbox setting, search-attribute upserts and summaries), started
with the same options as the runtime starts a saga, on a worker built by the same
`saga_worker` as the real one, on an untraced client over the same connection. Only the
activities differ: they decode their input and return a successful result at once. A
benchmark's ratio to this floor is therefore the cost of the services, stores and tracing.

`python -m harness.bench.floors.orchestration` keeps the older, smaller probe of
docs/temporal-latency.md (a workflow of four no-op activities, unsandboxed) for the
server-latency experiments there; ``--saga`` runs this floor instead.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RawValue, RetryPolicy
from temporalio.worker import Worker

from orchestration import saga_client
from orchestration.messages import (
    CLOSE_ORDER,
    PLACE_ORDER,
    REMOTE,
    ActivityMode,
    CloseCall,
    PlaceCall,
    SagaInput,
    StepCall,
    StepDone,
)
from orchestration.worker import SAGA_SANDBOX, saga_worker
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import (
    LineItem,
    OrderRequest,
    SagaOutcome,
    SagaPolicy,
    SagaStatus,
    ShippingAddress,
    StepResult,
)
from shared.definitions import ORDERS_V1

PROBE_STEPS = 4


@activity.defn(name=PLACE_ORDER)
async def place_order(call: PlaceCall) -> None:
    """The order is 'placed' without a store."""


@activity.defn(name=CLOSE_ORDER)
async def close_order(call: CloseCall) -> None:
    """Never called on the happy path; registered so the workflow's shape is complete."""


@activity.defn(dynamic=True)
async def step(args: Sequence[RawValue]) -> StepDone:
    """Any forward step or compensation: decode the call, report it done."""
    info = activity.info()
    activity.payload_converter().from_payload(args[0].payload, StepCall)
    result = StepResult.model_validate(
        {"saga_id": info.workflow_id, "step": info.activity_type, "status": "done"}
    )
    return StepDone(result=result, attempt=info.attempt)


NOOP_ACTIVITIES: tuple[Callable[..., Any], ...] = (place_order, close_order, step)


def bare_client(client: Client) -> Client:
    """A client over the same connection, data converter included, without tracing."""
    config = client.config()
    config["interceptors"] = []
    return Client(**config)


def floor_worker(client: Client, task_queue: str, *, sandbox: str = SAGA_SANDBOX) -> Worker:
    """The saga's worker (same builder, same options) running no-op activities."""
    return saga_worker(client, task_queue, NOOP_ACTIVITIES, sandbox=sandbox)


class OrchestrationFloor:
    """A floor worker on its own task queue for the block; ``once(i)`` times one saga."""

    def __init__(
        self,
        client: Client,
        order: OrderRequest,
        policy: SagaPolicy,
        activities: ActivityMode = REMOTE,
        *,
        sandbox: str = SAGA_SANDBOX,
    ) -> None:
        self.client = bare_client(client)
        self.order = order
        self.policy = policy
        self.activities: ActivityMode = activities
        self.task_queue = f"floor-{uuid.uuid4().hex[:8]}"
        self._worker = floor_worker(self.client, self.task_queue, sandbox=sandbox)
        self._numbers = itertools.count()

    async def __aenter__(self) -> OrchestrationFloor:
        await self._worker.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._worker.__aexit__(*exc)

    async def once(self, index: int) -> float:
        """One floor saga, started like a real one, until its result (seconds)."""
        saga_id = f"{self.task_queue}-{next(self._numbers)}"  # a workflow id is used once
        order = self.order.model_copy(update={"order_id": saga_id})
        saga = SagaInput(
            saga_id=saga_id,
            order=order,
            policy=self.policy,
            saga=ORDERS_V1.spec,
            definition=ORDERS_V1.ref,
            activities=self.activities,
        )
        started = time.perf_counter()
        await saga_client.start(self.client, self.task_queue, saga)  # as the runtime starts one
        handle: saga_client.SagaHandle = self.client.get_workflow_handle_for(
            OrderSagaWorkflow.run, saga_id
        )
        outcome: SagaOutcome = await handle.result()
        if outcome.status is not SagaStatus.COMPLETED:
            raise RuntimeError(f"floor saga {saga_id} ended {outcome.status.value}")
        return time.perf_counter() - started


# -- the server-latency probe of docs/temporal-latency.md ---------------------------------


@activity.defn(name="floor_noop")
async def noop() -> None:
    """Does nothing: any time spent is Temporal's."""


@workflow.defn(name="FloorSaga", sandboxed=False)
class ProbeWorkflow:
    """``steps`` no-op activities in sequence: the server's round trips and nothing else."""

    @workflow.run
    async def run(self, steps: int) -> None:
        for _ in range(steps):
            await workflow.execute_activity(
                noop,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=1),
            )


async def run_probe(
    client: Client, task_queue: str, n: int, concurrency: int, steps: int = PROBE_STEPS
) -> list[float]:
    """Run ``n`` probe workflows, ``concurrency`` at a time, on an in-process worker (s)."""
    gate = asyncio.Semaphore(concurrency)
    tag = uuid.uuid4().hex[:8]

    async def one(index: int) -> float:
        async with gate:
            started = time.perf_counter()
            await client.execute_workflow(
                ProbeWorkflow.run, steps, id=f"probe-{tag}-{index}", task_queue=task_queue
            )
            return time.perf_counter() - started

    worker = Worker(client, task_queue=task_queue, workflows=[ProbeWorkflow], activities=[noop])
    async with worker:
        return list(await asyncio.gather(*(one(i) for i in range(n))))


PROBE_ORDER = OrderRequest(
    order_id="floor",
    customer_id="alice",
    items=[LineItem(product_id="widget", quantity=1, unit_price_cents=1_999)],
    payment_method="card-4242",
    points_to_use=1,
    shipping_address=ShippingAddress(
        name="Alice Example", street="1 Main St", city="Springfield", postal_code="1", country="US"
    ),
)
"""A happy-path order with points, so every forward step runs."""


async def run_saga_floor(client: Client, n: int, concurrency: int) -> list[float]:
    """Run ``n`` saga-shaped floor workflows, ``concurrency`` at a time (s)."""
    gate = asyncio.Semaphore(concurrency)
    async with OrchestrationFloor(client, PROBE_ORDER, SagaPolicy()) as floor:

        async def one(index: int) -> float:
            async with gate:
                return await floor.once(index)

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def summary(latencies: list[float]) -> str:
    """p50 / p90 / max in milliseconds, for a one-line report."""
    ms = sorted(x * 1000 for x in latencies)
    p90 = ms[min(len(ms) - 1, int(len(ms) * 0.9))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f}ms p90={p90:.1f}ms max={ms[-1]:.1f}ms"


async def _main(args: argparse.Namespace) -> None:
    from orchestration.client import connect
    from orchestration.runtime import DEV_SERVER_CONFIG
    from orchestration.server import SQLITE_PRAGMAS, TemporalServer

    if args.address is not None:
        await _report(await connect(args.address, "default"), args)
        return
    config = {} if args.stock else DEV_SERVER_CONFIG
    pragmas = {} if args.no_pragmas else SQLITE_PRAGMAS
    server = TemporalServer(
        ui=False, dynamic_config=config, state_dir=args.state_dir, sqlite_pragmas=pragmas
    )
    async with server:
        client = await connect(server.address, "default")
        await run_probe(client, "probe-warmup", 5, 1)
        await _report(client, args)


async def _report(client: Client, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    if args.saga:
        latencies = await run_saga_floor(client, args.n, args.concurrency)
    else:
        latencies = await run_probe(client, "probe", args.n, args.concurrency)
    elapsed = time.perf_counter() - started
    print(f"{summary(latencies)} {len(latencies) / elapsed:.1f} workflows/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30, help="workflows to run")
    parser.add_argument("-c", "--concurrency", type=int, default=1)
    parser.add_argument("--address", help="an existing server instead of an embedded one")
    parser.add_argument("--saga", action="store_true", help="the saga-shaped benchmark floor")
    parser.add_argument(
        "--stock", action="store_true", help="embedded server without our dynamic config"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep the embedded server's state in a SQLite file here"
    )
    parser.add_argument(
        "--no-pragmas", action="store_true", help="that SQLite file with its default pragmas"
    )
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
