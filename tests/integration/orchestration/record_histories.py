"""Record the workflow histories the replay test checks: run this after a deliberate change.

    .venv/bin/python -m tests.integration.orchestration.record_histories

Starts its own in-memory dev server, runs each saga below, and writes its history as JSON to
histories/<name>.json. Commit the files; the replay test then fails on any change to the
workflow that would break these running sagas (a non-deterministic change).
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.compare.faulty import Faulty, injected
from orchestration.runtime import OrchestrationRuntime, open_runtime
from orchestration.server import TemporalServer, TemporalSettings
from shared.contracts import OrderRequest, SagaPolicy, StepName, StepStatus
from shared.definitions import ORDERS_V1
from shared.faults import FaultPlan, FaultRule
from shared.seed import seed
from tests.integration.orchestration.orchestration_support import order

HERE = Path(__file__).resolve().parent

HISTORIES = HERE / "histories"
POLICY = SagaPolicy(deadline_s=20, attempt_timeout_s=1, initial_backoff_s=0.05, max_backoff_s=0.2)


@dataclass(frozen=True)
class Recording:
    name: str
    order: OrderRequest
    faults: FaultPlan
    cancel_during: StepName | None = None
    operator: str | None = None
    """Who retries the failed compensations once the saga waits for an operator."""
    step_operator: str | None = None
    """Who retries the failed step past the pivot once the saga waits for an operator."""


RECORDINGS = (
    Recording("happy_path", order("history-happy"), FaultPlan()),
    Recording(
        "shipment_failed_refund_retried",
        order("history-compensated", country="AQ"),
        FaultPlan(rules=[FaultRule(step=StepName.REFUND_PAYMENT, transient=1)]),
    ),
    Recording(
        "cancelled_during_payment",
        order("history-cancelled"),
        FaultPlan(rules=[FaultRule(step=StepName.CHARGE_PAYMENT, delay_ms=300)]),
        cancel_during=StepName.CHARGE_PAYMENT,
    ),
    Recording(
        "refund_retried_by_an_operator",
        order("history-operator", country="AQ"),
        FaultPlan(rules=[FaultRule(step=StepName.REFUND_PAYMENT, transient=1_000)]),
        operator="ops",
    ),
    Recording(
        "completion_retried_by_an_operator",
        order("history-step-retry"),
        FaultPlan(rules=[FaultRule(step=StepName.COMPLETE_ORDER, permanent=True, rounds=1)]),
        step_operator="ops",
    ),
)


async def _cancel_when_running(
    runtime: Faulty[OrchestrationRuntime], saga_id: str, step: StepName
) -> None:
    while True:
        outcome = await runtime.describe(saga_id)
        if any(s.step is step and s.status is StepStatus.RUNNING for s in outcome.steps):
            await runtime.cancel_saga(saga_id)
            return
        await asyncio.sleep(0.02)


async def _record_one(
    runtime: Faulty[OrchestrationRuntime], recording: Recording, directory: Path
) -> Path:
    saga_id = recording.order.order_id
    await runtime.start_saga(saga_id, recording.order, recording.faults, POLICY)
    if recording.cancel_during is not None:
        await _cancel_when_running(runtime, saga_id, recording.cancel_during)
    await runtime.wait(saga_id, 30)
    if recording.operator is not None:
        await runtime.retry_compensation(saga_id, recording.operator)
    if recording.step_operator is not None:
        await runtime.retry_step(saga_id, recording.step_operator)
    handle = runtime.runtime.client.get_workflow_handle(saga_id)
    await handle.result()
    history = await handle.fetch_history()
    path = directory / f"{recording.name}.json"
    path.write_text(history.to_json() + "\n", encoding="utf-8")
    return path


async def record(directory: Path = HISTORIES) -> list[Path]:
    """Run every recording on a fresh dev server and write one history file each."""
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        async with TemporalServer(ui=False) as server:
            settings = TemporalSettings(address=server.address)
            plans, hooks = injected("orchestration")
            async with open_runtime(Path(data), ORDERS_V1, settings=settings, hooks=hooks) as raw:
                await seed(raw.domain)
                runtime = Faulty(raw, plans)
                return [await _record_one(runtime, r, directory) for r in RECORDINGS]


if __name__ == "__main__":
    for written in asyncio.run(record()):
        print(f"wrote {written}")
