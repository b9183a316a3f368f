"""Turn user input (an order file) into contracts, or one line naming the field and the fix."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.contracts import OrderRequest
from shared.errors import InvalidOrder
from shared.faults import FaultPlan
from shared.saga import SAGA, SagaSpec


class OrderFile(BaseModel):
    """An order file: the OrderRequest fields plus an optional ``faults`` FaultPlan."""

    model_config = ConfigDict(extra="forbid")
    order: OrderRequest
    faults: FaultPlan = FaultPlan()


def describe(error: ValidationError) -> str:
    """The first problem of a validation error as ``field.path: message``."""
    first = error.errors()[0]
    path = ".".join(
        f"[{part}]" if isinstance(part, int) else str(part) for part in first["loc"]
    ).replace(".[", "[")
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a known field; check its spelling"
    return f"{path or 'order'}: {message}"


def parse_order(text: str) -> OrderFile:
    """Parse an order file's JSON; every failure becomes an InvalidOrder with one line."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidOrder(
            f"order file is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from None
    if not isinstance(data, dict):
        raise InvalidOrder("order file must hold a JSON object with the order's fields")
    faults = data.pop("faults", None)
    try:
        parsed = OrderFile(order=data, faults=faults if faults is not None else FaultPlan())
    except ValidationError as error:
        raise InvalidOrder(describe(error).removeprefix("order.")) from None
    check_fault_steps(parsed.faults, SAGA)
    return parsed


def check_fault_steps(faults: FaultPlan, saga: SagaSpec) -> None:
    """A fault rule must name a step or compensation of the saga that will run."""
    for index, rule in enumerate(faults.rules):
        if not saga.knows(rule.step):
            names = ", ".join((*saga.forward_steps, *saga.compensations))
            raise InvalidOrder(
                f"faults.rules[{index}].step: unknown step {rule.step!r}; use one of: {names}"
            )
