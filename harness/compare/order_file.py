"""An order file: the `OrderRequest` fields plus, optionally, the faults the harness injects.

The faults are the harness's, never the order's: they are taken out here and installed out of
band for the saga (`shared/faults/sources.py`); the order itself goes to the services.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from shared.contracts import OrderRequest
from shared.definition import SagaDefinition
from shared.errors import InvalidOrder
from shared.faults import FaultPlan
from shared.validation import describe, load_order_json, order_of


@dataclass(frozen=True)
class OrderFile:
    order: OrderRequest
    faults: FaultPlan


def read_order_file(text: str, definition: SagaDefinition) -> OrderFile:
    """Parse an order file; every problem is one InvalidOrder line naming the field."""
    data = load_order_json(text)
    raw_faults = data.pop("faults", None)
    order = order_of(data)
    try:
        faults = FaultPlan.model_validate(raw_faults if raw_faults is not None else {})
    except ValidationError as error:
        raise InvalidOrder("faults." + describe(error)) from None
    try:
        faults = faults.resolve(definition.spec)
    except ValueError as error:
        raise InvalidOrder(str(error)) from None
    return OrderFile(order, faults)
