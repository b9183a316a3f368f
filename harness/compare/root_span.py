"""The harness's root span per saga: its name, its attributes, and how a trace file shows one.

The root span is named ``saga <variant> <order_id>`` (``saga orchestration happy-1``) so the two
styles' traces of one order differ by name in any trace UI. Files written before that change
name it ``saga <order_id>``; both load.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.telemetry import SAGA_ID, SAGA_ORDER_ID, SAGA_STEP, SAGA_VARIANT

ROOT_PREFIX = "saga "
SAGA_REPEAT = "saga.repeat"
"""Which run of the catalogue (1..K) a saga belongs to, on the root span."""


def root_span_name(variant: str, order_id: str) -> str:
    """``saga <variant> <order_id>``."""
    return f"{ROOT_PREFIX}{variant} {order_id}"


def is_saga_root(name: str, attributes: Mapping[str, Any], parentless: bool) -> bool:
    """A parentless span with the saga's id, variant and order (not a step's or the tracker's,
    which carry the id and variant too), or a parentless span with the old name."""
    if not parentless or SAGA_STEP in attributes:
        return False
    tagged = SAGA_ID in attributes and SAGA_VARIANT in attributes
    harness_own = SAGA_ORDER_ID in attributes or name.startswith(ROOT_PREFIX)
    return (tagged and harness_own) or _old_name(name)


def order_id_of(name: str, attributes: Mapping[str, Any]) -> str:
    """The order id: the root's attribute, else the last word of its name."""
    if SAGA_ORDER_ID in attributes:
        return str(attributes[SAGA_ORDER_ID])
    return name.removeprefix(ROOT_PREFIX).rsplit(" ", 1)[-1]


def _old_name(name: str) -> bool:
    rest = name.removeprefix(ROOT_PREFIX)
    return name.startswith(ROOT_PREFIX) and bool(rest) and " " not in rest
