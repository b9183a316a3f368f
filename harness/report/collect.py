"""An attached run's traces: the deployment's processes write their spans to files of their own
(``<state dir>/traces/<kind>.jsonl``, see harness/deploy/deployment.py); the run copies into its
trace file the spans of the traces its sagas started, so its report shows the services' work.

Only what was written after the run started is read, and only spans of the run's own traces
are kept (a deployment serves other runs too). Processes write their spans a fraction of a
second after they end, so the copy waits until every saga's trace has spans from the
deployment and a moment passes with nothing new, or until a bound.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.report.traces import load_traces

WAIT_S = 10.0
QUIET_S = 0.8
POLL_S = 0.2


@dataclass
class SpanSources:
    """The deployment's span files, read from where they stood when the run started."""

    folder: Path
    offsets: dict[Path, int] = field(default_factory=dict)

    @classmethod
    def at_start(cls, folder: Path) -> SpanSources:
        files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        return cls(folder, {path: path.stat().st_size for path in files})

    async def collect(self, into: Path, wait_s: float = WAIT_S, quiet_s: float = QUIET_S) -> int:
        """Append to ``into`` the deployment's spans of the traces ``into`` holds; returns how
        many spans were copied."""
        ours = {saga.trace_id for saga in load_traces(into)} if into.exists() else set()
        if not ours or not self.folder.is_dir():
            return 0
        lines: list[str] = []
        seen: set[str] = set()
        copied = 0
        end = time.monotonic() + wait_s
        last_new = time.monotonic()
        while time.monotonic() < end:
            found = [kept for line in self._new_lines() if (kept := _keep(line, ours)) is not None]
            for payload, traces, count in found:
                lines.append(json.dumps(payload, separators=(",", ":")))
                seen |= traces
                copied += count
            if found:
                last_new = time.monotonic()
            elif seen >= ours and time.monotonic() - last_new >= quiet_s:
                break
            await asyncio.sleep(POLL_S)
        with into.open("a", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        return copied

    def _new_lines(self) -> list[str]:
        """Whole lines written since the last read (a line being written waits for the next)."""
        found: list[str] = []
        for path in sorted(self.folder.glob("*.jsonl")):
            start = self.offsets.get(path, 0)
            with path.open("rb") as stream:
                stream.seek(start)
                data = stream.read()
            complete = data.rfind(b"\n") + 1
            self.offsets[path] = start + complete
            found += data[:complete].decode("utf-8", errors="replace").splitlines()
        return found


def _keep(line: str, ours: set[str]) -> tuple[dict[str, Any], set[str], int] | None:
    """The line's TracesData with only the spans of our traces (None: nothing of ours)."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    traces: set[str] = set()
    count = 0
    kept_resources = []
    for resource in data.get("resourceSpans", []) if isinstance(data, dict) else []:
        scopes = []
        for scope in resource.get("scopeSpans", []):
            spans = [s for s in scope.get("spans", []) if str(s.get("traceId", "")).lower() in ours]
            if spans:
                scopes.append({**scope, "spans": spans})
                traces |= {str(s["traceId"]).lower() for s in spans}
                count += len(spans)
        if scopes:
            kept_resources.append({**resource, "scopeSpans": scopes})
    return ({"resourceSpans": kept_resources}, traces, count) if kept_resources else None
