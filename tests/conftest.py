"""Process-wide test set-up: the process's tracing keeps spans in memory for every test to read,
and the store backends under test.

The test process plays the harness: spans started outside any service scope name it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.store import StoreFactory, sqlite_stores
from shared.telemetry import HARNESS, Tracing, configure_tracing
from tests.pg_support import postgres_server, postgres_store_factory

__all__ = ["postgres_server", "postgres_store_factory"]

_TRACING: Tracing = configure_tracing(HARNESS, memory=True)

STORE_BACKENDS = ("sqlite", "postgres")
"""Every adapter of the `Store` protocol; the store suite runs once per entry."""


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """The global in-memory exporter, emptied before the test."""
    assert _TRACING.memory is not None
    _TRACING.memory.clear()
    yield _TRACING.memory


@pytest.fixture(params=STORE_BACKENDS)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A fresh, empty place for stores on one backend: the same name opens the same database."""
    if request.param == "sqlite":
        return sqlite_stores(tmp_path / "stores")
    if request.param == "postgres":
        factory: StoreFactory = request.getfixturevalue("postgres_store_factory")
        return factory
    raise ValueError(f"unknown store backend {request.param!r}")


SLOW_FOLDERS = ("e2e", "contract")
"""Whole tiers that start servers and processes for every module (the CLI, the contract
suite over both variants and both backends)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the slow tier: ``-m "not slow"`` (``make test-fast``) runs the rest in a few
    minutes; CI and ``scripts/test.sh`` run everything."""
    here = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(here).parts[0]
        if folder in SLOW_FOLDERS or "postgres" in item.name:
            item.add_marker(pytest.mark.slow)
