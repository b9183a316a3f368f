"""The lab run in this process: its runtimes' stores placed as the settings choose, its sagas
traced to a file (the report's swimlanes are drawn from it).

Shared by `saga-compare anomalies` and the review's isolation part, so both run the same lab.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from harness.anomalies.lab import Places
from harness.anomalies.matrix import LabDocument, LabPlan, Progress, run_lab
from shared.postgres_server import EmbeddedPostgres
from shared.settings import Settings, StoreKind
from shared.store import sqlite_stores
from shared.store.postgres import postgres_stores
from shared.telemetry import HARNESS, configure_tracing


async def run_traced(
    plan: LabPlan,
    settings: Settings,
    scratch: Path,
    traces: Path,
    progress: Progress,
    command: str = "",
) -> LabDocument:
    """The lab's runs with their state under ``scratch`` and their spans in ``traces``."""
    tracing = configure_tracing(HARNESS)
    with tracing.exporting(jsonl=traces):
        async with lab_places(settings, scratch) as places:
            return await run_lab(plan, places, scratch / "state", tracing, progress, command)


@asynccontextmanager
async def lab_places(settings: Settings, scratch: Path) -> AsyncIterator[Places]:
    """The stores of each lab runtime: SQLite files in the run's folder, or Postgres schemas."""
    if settings.store is StoreKind.SQLITE:
        yield lambda variant, name: sqlite_stores(scratch / "stores" / variant / name)
    elif settings.postgres_url:
        url = settings.postgres_url
        yield lambda variant, name: postgres_stores(url, schema_prefix=_schema(variant, name))
    else:
        async with EmbeddedPostgres(state_dir=scratch / "postgres") as server:
            yield lambda variant, name: postgres_stores(
                server.url, schema_prefix=_schema(variant, name)
            )


def _schema(variant: str, name: str) -> str:
    return f"anomalies_{variant[:5]}_{name}_"
