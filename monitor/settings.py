"""The monitor's settings (environment variables with the ``SAGA_MONITOR_`` prefix)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class MonitorSettings(BaseSettings):
    """What the page links to, when it raises an alert, and who may act."""

    model_config = SettingsConfigDict(
        env_prefix="SAGA_MONITOR_", extra="ignore", frozen=True, env_ignore_empty=True
    )

    token: str | None = Field(default=None, min_length=16, max_length=200)
    """One operator's token (SAGA_MONITOR_TOKEN): its actions are recorded as ``operator``."""
    operators: dict[str, Annotated[str, Field(min_length=16, max_length=200)]] = Field(
        default_factory=dict
    )
    """Each operator's name and token, as JSON (SAGA_MONITOR_OPERATORS='{"ann": "..."}'):
    beyond loopback an action needs one, and is recorded as the operator it names."""
    trace_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://.*\{trace_id\}")
    """A trace UI's page for one trace, e.g. ``http://127.0.0.1:16686/trace/{trace_id}``."""
    temporal_ui_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    """The Temporal Web UI, when the monitor did not start the server (a cluster, compose)."""
    stuck_after_s: float = Field(default=10.0, gt=0, le=86_400)
    """A running saga with no new event or history entry for this long is listed as stuck."""
    deadline_warning_s: float = Field(default=5.0, ge=0, le=86_400)
    """A running saga this close to its business deadline (or past it) is listed too."""
    refresh_ms: int = Field(default=2_000, ge=250, le=60_000)
    """How often the page asks for fresh fragments."""
    cache_s: float = Field(default=1.0, ge=0, le=60)
    """Reads are shared by every open page for this long: ten tabs cost one read."""

    @field_validator("token", "trace_url", "temporal_ui_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """``VAR=`` (as compose passes an unset variable) means not set."""
        return None if value == "" else value


def is_loopback(host: str) -> bool:
    """Whether a bind address only accepts connections from this machine."""
    return host in LOOPBACK_HOSTS or host.startswith("127.")


def load_monitor_settings() -> MonitorSettings:
    """The monitor's settings, or a ValueError naming the variable to fix (one line)."""
    try:
        return MonitorSettings()
    except SettingsError as error:  # a value that is not JSON where JSON is expected
        field = str(error).split('"')[1] if '"' in str(error) else "?"
        raise ValueError(
            f"SAGA_MONITOR_{field.upper()}: not valid JSON; fix it or unset it"
        ) from None
    except ValidationError as error:
        first = error.errors()[0]
        name = "SAGA_MONITOR_" + str(first["loc"][0]).upper() if first["loc"] else "?"
        raise ValueError(f"{name}: {first['msg']}; fix it or unset it") from None
