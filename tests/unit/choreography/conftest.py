"""Unit tests of the choreography: the fakes module beside this file is importable."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test folder on sys.path; the fakes module lives here.
sys.path.insert(0, str(Path(__file__).parent))
