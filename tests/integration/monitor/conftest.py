"""The monitor's integration tests share their sagas' timings and faults (monitor_sagas)."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test folder on sys.path; the helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))
