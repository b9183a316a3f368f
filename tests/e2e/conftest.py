"""Run the installed `saga-compare` command as a user would, in folders of its own.

Each test gets a working folder and a TMPDIR that start empty, so "nothing left behind" is
checkable: after a refused or interrupted run both must be empty again.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

COMMAND = Path(sys.executable).parent / "saga-compare"


@dataclass
class Cli:
    """The real command, run with ``cwd`` as its working folder and ``tmp`` as its TMPDIR."""

    cwd: Path
    tmp: Path
    inputs: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The test process's environment without SAGA_ settings, plus TMPDIR and ``extra``."""
        base = {k: v for k, v in os.environ.items() if not k.startswith("SAGA_")}
        base.pop("COLUMNS", None)
        return {**base, "TMPDIR": str(self.tmp), **(extra or {})}

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(COMMAND), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.cwd,
            env=self.env(env),
        )

    def start(self, *args: str, stdout: int | None = None) -> subprocess.Popen[str]:
        """Start the command without waiting; its stderr is a pipe to read progress from."""
        return subprocess.Popen(
            [str(COMMAND), *args],
            stdout=stdout if stdout is not None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.cwd,
            env=self.env(),
        )

    def leftovers(self) -> list[Path]:
        """Whatever the command left in its working folder or its TMPDIR."""
        return sorted([*self.cwd.iterdir(), *self.tmp.iterdir()])

    @staticmethod
    def assert_one_line_error(
        result: subprocess.CompletedProcess[str], *fragments: str, code: int = 2
    ) -> None:
        """Exit code ``code``, exactly one stderr line holding every fragment, no traceback."""
        assert result.returncode == code, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert lines[0].startswith("error: ")
        for fragment in fragments:
            assert fragment in lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A `saga-compare` runner whose working folder and TMPDIR start empty."""
    folders = [tmp_path / name for name in ("cwd", "tmp", "inputs")]
    for folder in folders:
        folder.mkdir()
    return Cli(*folders)
