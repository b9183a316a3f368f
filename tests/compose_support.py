"""What scripts/compose-env.sh writes, for the tests of the compose set-up."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def run_env_script(folder: Path) -> dict[str, str]:
    """Run a copy of scripts/compose-env.sh in ``folder``; the ``.env`` it wrote there, as a
    mapping of variable to password."""
    (folder / "scripts").mkdir(parents=True)
    script = folder / "scripts" / "compose-env.sh"
    shutil.copy(ROOT / "scripts" / "compose-env.sh", script)
    subprocess.run(["bash", str(script)], check=True, capture_output=True)
    lines = (folder / ".env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))
