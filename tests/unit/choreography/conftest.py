"""Unit tests of the choreography: the fakes module beside this file is importable."""

from __future__ import annotations
