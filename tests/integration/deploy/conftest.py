"""Deployment tests: the session's embedded Postgres, and a folder on the test helpers' path."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test folder on sys.path; the helpers module lives here.
sys.path.insert(0, str(Path(__file__).parent))
