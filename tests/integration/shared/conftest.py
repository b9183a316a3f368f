"""Fixtures for the shared package's integration tests: the session's embedded Postgres."""

from __future__ import annotations

import sys
from pathlib import Path

# --import-mode=importlib puts no test folder on sys.path; pg_support lives in tests/.
sys.path.insert(0, str(Path(__file__).parents[2]))

from pg_support import postgres_server, postgres_store_factory

__all__ = ["postgres_server", "postgres_store_factory"]
