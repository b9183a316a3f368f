"""The worker refuses a workflow made by a saga definition it does not hold.

A workflow's input names the definition it was started with (`SagaInput.definition`). A
worker holds one definition (and the earlier ones it still understands); for any other, the
workflow's task fails on this worker with both definitions named — loudly, in the worker's log
and the Temporal UI — and Temporal retries the task, so a worker holding the right definition
can still take it. Failing the task rather than the workflow keeps the saga: nothing of it ran.
"""

from __future__ import annotations

from typing import Any

from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from orchestration.messages import SagaInput
from shared.definition import SagaDefinition


class HeldDefinition(Interceptor):
    """Checks every workflow's definition against the one this worker was built with."""

    def __init__(self, definition: SagaDefinition) -> None:
        self.definition = definition

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        definition = self.definition

        class CheckDefinition(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                saga = input.args[0] if input.args else None
                if isinstance(saga, SagaInput):
                    definition.check(saga.definition)  # DefinitionMismatch fails the task
                return await super().execute_workflow(input)

        return CheckDefinition
