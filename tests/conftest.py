"""Process-wide test set-up: the process's tracing keeps spans in memory for every test to read.

The test process plays the harness: spans started outside any service scope name it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.telemetry import HARNESS, Tracing, configure_tracing

_TRACING: Tracing = configure_tracing(HARNESS, memory=True)


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """The global in-memory exporter, emptied before the test."""
    assert _TRACING.memory is not None
    _TRACING.memory.clear()
    yield _TRACING.memory
