"""Process-wide test set-up: one in-memory tracer provider every test can read spans from."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import Tracing, configure_tracing

_TRACING: Tracing = configure_tracing("saga-compare-tests", "test", exporter="memory")


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """The global in-memory exporter, emptied before the test."""
    assert _TRACING.memory is not None
    _TRACING.memory.clear()
    yield _TRACING.memory
