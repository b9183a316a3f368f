"""A step's audit record: each business value it read and wrote, with the time, in its result.

A service notes what its transaction read and wrote (``stock/widget`` read 100, wrote 98)
and puts the list in the step result's ``detail`` (or a refusal's), so whoever sees step
results — the harness's history of an anomaly run — knows what each saga saw without reading
any store. A write says whether it was computed from a value read in the same transaction
(``read``) or written blind, from nothing or from a value read earlier: that is what tells a
lost update from a safe one. Keys are ``<kind>/<id>``: ``stock/<product>``,
``points/<customer>``, ``price/<product>``, ``charge/<saga>``, ``order/<saga>``,
``shipment/<saga>``.
"""

from __future__ import annotations

import time
from typing import Any

AUDIT = "audit"
"""The key of the list in a step result's detail."""

Value = int | str


class Audit:
    """What one transaction read and wrote, in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def read(self, key: str, value: Value) -> Value:
        self.entries.append({"op": "read", "key": key, "value": value, "at": time.time()})
        return value

    def wrote(self, key: str, value: Value, *, read: Value | None = None) -> None:
        """A write; ``read`` is the value it was computed from, read in this transaction."""
        entry: dict[str, Any] = {"op": "write", "key": key, "value": value, "at": time.time()}
        if read is not None:
            entry["read"] = read
        self.entries.append(entry)

    def into(self, detail: dict[str, Any]) -> dict[str, Any]:
        """The step's detail with the audit added."""
        return {**detail, AUDIT: list(self.entries)}


def reported(detail: dict[str, Any]) -> dict[str, Any]:
    """What a step reports to its saga (an envelope-2 event's ``detail``, release 2's results
    memo): its detail without the audit, which only the harness reads, at the step seam."""
    return {key: value for key, value in detail.items() if key != AUDIT}


def stock(product_id: str) -> str:
    return f"stock/{product_id}"


def points(customer_id: str) -> str:
    return f"points/{customer_id}"


def price(product_id: str) -> str:
    return f"price/{product_id}"


def charge(saga_id: str) -> str:
    return f"charge/{saga_id}"


def order(saga_id: str) -> str:
    return f"order/{saga_id}"


def shipment(saga_id: str) -> str:
    return f"shipment/{saga_id}"
