"""Deployment tests: the session's embedded Postgres, and a folder on the test helpers' path."""

from __future__ import annotations
