"""Committed workflow histories must replay on today's workflow code: determinism is checked.

The histories were recorded by release 1 (saga definition v1). Every workflow code a worker
may run them on must replay them: release 1's, and release 2's patched code (the
``patched`` and ``auto-upgrade`` settings). A change that breaks one fails naming the history.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from orchestration.messages import WORKFLOW_NAME, SagaInput, StepCall, StepDone
from orchestration.workflows import OrderSagaWorkflow, workflow_for
from shared.contracts import SagaOutcome, SagaStatus
from tests.integration.orchestration.record_histories import HISTORIES, RECORDINGS, record

pytestmark = pytest.mark.asyncio(loop_scope="module")

COMMITTED = sorted(HISTORIES.glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text(encoding="utf-8"))


async def replay(workflow_class: type, history: WorkflowHistory) -> None:
    """Replay, or fail naming the history and the code that no longer replays it."""
    replayer = Replayer(workflows=[workflow_class], data_converter=pydantic_data_converter)
    try:
        await replayer.replay_workflow(history)
    except workflow.NondeterminismError as error:
        raise AssertionError(
            f"history {history.workflow_id} no longer replays on {workflow_class.__name__}: "
            f"{str(error).splitlines()[0][:300]}"
        ) from None


MEETS_V1_HISTORIES = {
    "release 1": workflow_for(1, "none"),
    "release 2, patched": workflow_for(2, "patched"),
    "release 2, auto-upgrade": workflow_for(2, "auto-upgrade"),
}
"""Every workflow code a worker may run a v1 saga on (a pinned v1 saga stays on release 1)."""


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


@pytest.mark.parametrize("code", MEETS_V1_HISTORIES)
@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
async def test_committed_history_replays_without_nondeterminism(path: Path, code: str) -> None:
    await replay(MEETS_V1_HISTORIES[code], load(path))


async def test_a_non_deterministic_change_fails_the_replay_naming_the_history() -> None:
    with pytest.raises(AssertionError, match="history happy_path no longer replays"):
        await replay(SagaWithoutPlacingTheOrder, load(HISTORIES / "happy_path.json"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
async def test_release_2_without_its_patch_fails_every_v1_history(path: Path) -> None:
    """The "none" setting's code: the results memo is a command v1's histories lack."""
    with pytest.raises(AssertionError, match=f"history {path.stem} no longer replays") as failed:
        await replay(workflow_for(2, "none"), load(path))
    assert "ModifyWorkflowProperties" in str(failed.value)


async def test_the_recorder_writes_histories_that_replay(tmp_path: Path) -> None:
    written = await record(tmp_path)

    assert [p.name for p in written] == [f"{r.name}.json" for r in RECORDINGS]
    for path in written:
        await replay(OrderSagaWorkflow, load(path))
