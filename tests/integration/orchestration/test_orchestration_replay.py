"""Committed workflow histories must replay on today's workflow code: determinism is checked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from orchestration.messages import WORKFLOW_NAME, SagaInput, StepCall, StepDone
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import SagaOutcome, SagaStatus
from tests.integration.orchestration.record_histories import HISTORIES, RECORDINGS, record

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMMITTED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


async def replay(workflow_class: type, history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)


@workflow.defn(name=WORKFLOW_NAME, sandboxed=False)
class SagaWithoutPlacingTheOrder:
    """A deliberately non-deterministic edit: the first activity is no longer place_order."""

    @workflow.run
    async def run(self, saga: SagaInput) -> SagaOutcome:
        await workflow.execute_activity(
            "reserve_inventory",
            StepCall(order=saga.order),
            result_type=StepDone,
            start_to_close_timeout=timedelta(seconds=1),
        )
        return SagaOutcome(saga_id=saga.saga_id, order_id="x", status=SagaStatus.COMPLETED)


async def test_committed_histories_cover_happy_compensated_cancelled_and_operator_sagas() -> None:
    assert [p.stem for p in COMMITTED] == sorted(r.name for r in RECORDINGS)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
async def test_committed_history_replays_without_nondeterminism(path: Path) -> None:
    await replay(OrderSagaWorkflow, load(path))


async def test_a_non_deterministic_change_fails_the_replay() -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replay(SagaWithoutPlacingTheOrder, load(HISTORIES / "happy_path.json"))


async def test_the_recorder_writes_histories_that_replay(tmp_path: Path) -> None:
    written = await record(tmp_path)

    assert [p.name for p in written] == [f"{r.name}.json" for r in RECORDINGS]
    for path in written:
        await replay(OrderSagaWorkflow, load(path))
