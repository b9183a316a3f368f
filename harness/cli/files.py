"""Where a run's files go, and how a run that does not finish leaves nothing behind.

A run works in a temporary folder (the servers' state, the traces, the log). Only a run that
finishes moves its outputs out: into the report folder, or the log alone into a file beside
the temporary folders. Bad input, a server that cannot be reached, or a signal remove the
temporary folder and any report folder the run created, so a retry starts from a clean slate.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

from harness.cli.logs import LOG_NAME, LogFile
from shared.validation import InvalidInput

SCRATCH_PREFIX = "saga-compare-"


def first_missing(path: Path) -> Path | None:
    """The outermost folder of ``path`` that does not exist yet (what creating it adds)."""
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            return missing
        missing = folder
    return missing


def prepare_folder(path: Path, what: str, fix: str) -> Path | None:
    """Create ``path`` if missing and prove it writable; returns the outermost folder created.

    ``what`` names the input in the message (``--report-dir``), ``fix`` says what to do.
    """
    if path.exists() and not path.is_dir():
        raise InvalidInput(f"{what} {path} is a file, not a folder; {fix}")
    created = first_missing(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".saga-compare-probe-"):
            pass
    except OSError as error:
        remove_tree(created)
        reason = error.strerror or type(error).__name__
        raise InvalidInput(f"{what} {path} cannot be written ({reason}); {fix}") from None
    return created


def unique_folder(parent: Path, stem: str, what: str, fix: str) -> tuple[Path, Path | None]:
    """Create ``parent/stem`` or, when a run already took it, ``stem-2``, ``stem-3`` ...

    ``mkdir`` without ``exist_ok`` is atomic, so two runs started in the same second
    never share a folder. Returns the folder and the outermost folder created.
    """
    created = prepare_folder(parent, what, fix)
    for attempt in range(1, 1000):
        folder = parent / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder, created or folder
    remove_tree(created)
    raise InvalidInput(f"{what} {parent} already holds 999 folders named {stem}; {fix}")


def remove_tree(folder: Path | None) -> None:
    """Remove a folder this run created, whatever is inside (no error if it is gone)."""
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


class Workspace:
    """A run's temporary folder, its log, and its report folder until the run finishes."""

    def __init__(self, report: Path | None, created: Path | None, data_dir: Path | None) -> None:
        self.report = report
        self._created = created
        self._data_dir = data_dir
        self._data_created: Path | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._log: LogFile | None = None
        self.log_path: Path | None = None

    @property
    def scratch(self) -> Path:
        """The run's temporary folder (removed when the run ends, however it ends)."""
        assert self._scratch is not None, "use the workspace in a with block"
        return Path(self._scratch.name)

    def __enter__(self) -> Self:
        try:
            if self._data_dir is not None:
                fix = "point SAGA_DATA_DIR at a writable folder or unset it"
                self._data_created = prepare_folder(self._data_dir, "SAGA_DATA_DIR", fix)
            self._scratch = tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=self._data_dir)
            # Traversable (not listable) by others: an embedded Postgres runs as its own user.
            self.scratch.chmod(0o711)
            self._log = LogFile(self.scratch / LOG_NAME).open()
        except BaseException:
            self._discard()
            raise
        return self

    def finish(self) -> Path:
        """Keep the log (in the report folder, else in a file of its own); returns its path."""
        assert self._log is not None
        if self.report is not None:
            target = self.report / LOG_NAME
        else:
            name = f"saga-compare-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}.log"
            target = Path(tempfile.gettempdir()) / name
        self._log.move_to(target)
        self._log = None
        self._created = None  # the report folder now holds a finished run: keep it
        self.log_path = target
        return target

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._discard()

    def _discard(self) -> None:
        """Close the log; remove the temporary folder and the folders an unfinished run made."""
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None
        remove_tree(self._created)
        self._created = None
        if self._data_created is not None:
            with contextlib.suppress(OSError):
                _remove_empty(self._data_created, self._data_dir)


def _remove_empty(top: Path, leaf: Path | None) -> None:
    """Remove the empty folders from ``leaf`` up to ``top`` (the ones this run created)."""
    folder = leaf
    while folder is not None:
        os.rmdir(folder)
        if folder == top:
            return
        folder = folder.parent
