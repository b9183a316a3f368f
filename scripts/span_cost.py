"""What one span costs in this process, on this machine: made, ended and exported.

    .venv/bin/python scripts/span_cost.py

Times (CPU of the whole process, so the exporter's thread is counted) ``--spans`` spans started
as current spans through the process's router, in a service's scope as the choreography's are:
with no attributes and with the twelve a messaging span carries, without sinks and with the
JSON-lines file attached, and dropped (tracing off). Best of three runs per row, in
microseconds per span. The SDK's own span (``TracerProvider.get_tracer().start_span``) is
timed beside it, so what the router adds and what the SDK costs are told apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from opentelemetry import trace

from shared.telemetry import (
    HARNESS,
    configure_tracing,
    get_tracer,
    service_component,
    service_scope,
)

MESSAGING: dict[str, str | int] = {
    "messaging.system": "nats",
    "messaging.operation.type": "send",
    "messaging.operation.name": "send",
    "messaging.destination.template": "saga.payment.charged.{saga_id}",
    "saga.variant": "choreography",
    "messaging.nats.duplicate": False,
    "server.address": "127.0.0.1",
    "server.port": 4222,
}


def attributes(index: int) -> dict[str, str | int]:
    """A messaging span's twelve attributes, four of them new for every message."""
    saga = f"s-{index}"
    return {
        **MESSAGING,
        "messaging.destination.name": f"saga.payment.charged.{saga}",
        "messaging.message.id": f"{saga}:payment.charged",
        "messaging.message.conversation_id": saga,
        "saga.id": saga,
    }


def timed(spans: int, one: Callable[[int], None]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        with service_scope(service_component("payment")):
            for index in range(spans):
                one(index)
        best = min(best, (time.process_time() - started) / spans * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=5000)
    args = parser.parse_args()
    tracing = configure_tracing(HARNESS)
    routed = get_tracer("span-cost")
    sdk = tracing.provider(service_component("payment")).get_tracer("span-cost")

    def current(with_attributes: bool) -> Callable[[int], None]:
        def one(index: int) -> None:
            with routed.start_as_current_span(
                "send", attributes=attributes(index) if with_attributes else None
            ):
                pass

        return one

    def bare(with_attributes: bool) -> Callable[[int], None]:
        def one(index: int) -> None:
            sdk.start_span("send", attributes=attributes(index) if with_attributes else None).end()

        return one

    def rows(sinks: str) -> None:
        for label, one in (
            ("router, current span, no attributes", current(False)),
            ("router, current span, 12 attributes", current(True)),
            ("SDK span alone, no attributes", bare(False)),
            ("SDK span alone, 12 attributes", bare(True)),
        ):
            print(f"| {sinks} | {label} | {timed(args.spans, one):.1f} |")

    print(f"1-minute load at start: {os.getloadavg()[0]:.2f}\n")
    print("| sinks | span | µs per span |\n|---|---|---|")
    rows("none")
    with tempfile.TemporaryDirectory() as folder, tracing.exporting(jsonl=Path(folder) / "t.jsonl"):
        rows("JSON-lines file")
        tracing.set_enabled(False)
        dropped = timed(args.spans, current(False))
        print(f"| JSON-lines file | dropped (tracing off) | {dropped:.1f} |")
        tracing.set_enabled(True)
    assert trace.get_tracer_provider() is tracing.router


if __name__ == "__main__":
    main()
