"""What the Temporal Web UI shows of a saga: custom search attributes, summaries and filters.

A workflow that *returns* a failure outcome is "Completed" to Temporal, so the saga says what
it is through four Keyword search attributes, upserted by the workflow as it moves:

- ``OrderId``: the order as the services hold it (set at start, so a saga is found before its
  first task runs); a run of the harness holds ``ship-1`` as ``ship-1-<run tag>``, which
  ``given_order_filter`` finds by the id it was given;
- ``SagaStatus``: RUNNING, COMPENSATING, then COMPLETED / COMPENSATED / NEEDS_INTERVENTION;
- ``SagaStep``: the step or compensation in flight; at the end the last one that ran, or the
  one a person must finish;
- ``SagaReason``: why it compensates (``shipment_failed``, ``timed_out`` ...).

They must exist on the namespace before a saga upserts them: the embedded dev server is started
with ``--search-attribute NAME=Keyword``; a cluster needs ``temporal operator search-attribute
create`` once (docs/orchestration.md), and the runtime checks for them at start.
This module is imported by the workflow (pass-through): nothing here does I/O at import.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from shared.contracts import OrderRequest, ReasonId, SagaStatus
from shared.saga import SagaSpec

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
SAGA_STATUS = SearchAttributeKey.for_keyword("SagaStatus")
SAGA_STEP = SearchAttributeKey.for_keyword("SagaStep")
SAGA_REASON = SearchAttributeKey.for_keyword("SagaReason")
KEYS = (ORDER_ID, SAGA_STATUS, SAGA_STEP, SAGA_REASON)
DEFINITION_MEMO = "definition"
"""Memo set at start: the saga definition (name, version, digest) the workflow runs."""

COMPENSATING = "COMPENSATING"
"""Not an outcome: what ``SagaStatus`` says while compensations run."""
RESOLVED = "RESOLVED"
"""Not an outcome either: what ``SagaStatus`` says of a NEEDS_INTERVENTION saga an operator
resolved by hand (its outcome stays NEEDS_INTERVENTION, with the resolution among its
actions), so the filter below lists only the sagas still waiting for a person."""

NEEDS_INTERVENTION_FILTER = f'{SAGA_STATUS.name} = "{SagaStatus.NEEDS_INTERVENTION.value}"'
"""The list filter of every saga a person must finish (Web UI, ``temporal workflow list -q``)."""
RESOLVED_FILTER = f'{SAGA_STATUS.name} = "{RESOLVED}"'
"""The list filter of the sagas a person finished by hand."""


def given_order_filter(order_id: str) -> str:
    """The list filter that finds an order by the id it was given, whether it is held as is or
    with the tag of the run that placed it (``ship-1`` finds ``ship-1-3fa2b1c4``)."""
    return f'({order_filter(order_id)} OR {ORDER_ID.name} STARTS_WITH "{order_id}-")'


def order_filter(order_id: str) -> str:
    """The list filter that finds an order's saga(s) by order id."""
    return f'{ORDER_ID.name} = "{order_id}"'


def start_attributes(order: OrderRequest) -> TypedSearchAttributes:
    """What a saga starts with: its order and RUNNING, visible before any worker runs it."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(ORDER_ID, order.order_id),
            SearchAttributePair(SAGA_STATUS, SagaStatus.RUNNING.value),
        ]
    )


def start_summary(order: OrderRequest) -> str:
    """The one line the workflow list shows for a saga."""
    items = sum(line.quantity for line in order.items)
    total = order.total_cents / 100
    return f"Order {order.order_id}: {items} item(s), {total:.2f}, customer {order.customer_id}"


def start_details(order: OrderRequest, spec: SagaSpec) -> str:
    """The saga's details page header (Markdown): the order and the steps it will take."""
    lines = [f"**Order** `{order.order_id}` for customer `{order.customer_id}`", ""]
    lines += [f"- {line.quantity} x `{line.product_id}`" for line in order.items]
    if order.points_to_use:
        lines.append(f"- pays {order.points_to_use} points")
    steps = ", ".join(step.replace("_", " ") for step in spec.forward_steps)
    lines += ["", f"Steps: {steps}; compensations in reverse order on failure."]
    return "\n".join(lines)


def activity_summary(name: str, *, compensating: bool, reason: ReasonId | None) -> str:
    """One line per activity in the timeline: what it does and, if undoing, why."""
    label = name.replace("_", " ")
    if compensating:
        return f"undo: {label}" + (f" ({reason})" if reason else "")
    return label
