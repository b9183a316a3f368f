"""The monitor's integration tests share their sagas' timings and faults (monitor_sagas)."""

from __future__ import annotations
