"""The marker ``--attach`` alone stands for, apart from attach.py so parsing a flag stays light.

`harness.deploy.attach` (which resolves it) imports both variants' runtimes; the command line
expands the bare flag to this marker before any command module is imported.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT = Path(":settings:")
"""What ``--attach`` alone stands for: the settings' state dir (SAGA_STATE_DIR)."""
