"""Unit tests of the harness: the helpers module beside this file is importable."""

from __future__ import annotations
