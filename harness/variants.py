"""The two styles the harness compares, by name: one definition, light enough for the CLI.

The command line's options and the session both need the names; importing them from the
session (the composition root) would load both variants' runtimes to parse ``--variant``.
"""

from __future__ import annotations

VARIANTS = ("orchestration", "choreography")
