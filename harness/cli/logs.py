"""Send every library's log output to one file, so the terminal shows only the command's own.

A saga run injects failures on purpose; the Temporal worker logs each failed activity with a
traceback, and the Temporal Rust core prints its warnings (with colour codes) on stdout, which
broke `--json`. Here Python logging (temporalio, nats, asyncio), `warnings`, and the core's
log (forwarded into Python logging by the SDK's `LogForwardingConfig`) all go to one file.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

LOG_NAME = "saga-compare.log"
CORE_LOGGER = "temporalio.core"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFile:
    """Owns the log file while a command runs; `close` leaves later records discarded."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handler = _handler(path)

    def open(self) -> LogFile:
        """Make the file the only destination of Python logging, warnings and Temporal core."""
        root = logging.getLogger()
        root.handlers[:] = [self._handler]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        route_temporal_core(logging.getLogger(CORE_LOGGER))
        return self

    def move_to(self, target: Path) -> None:
        """Move the file and keep logging into it there.

        The Temporal core forwards its records every few milliseconds from its own thread, so
        a warning from the worker's shutdown can arrive after the run: it still lands here
        (the handler is closed by logging's own exit hook).
        """
        self._handler.close()
        shutil.move(self.path, target)
        self.path = target
        self._handler = _handler(target)
        logging.getLogger().handlers[:] = [self._handler]

    def close(self) -> None:
        """Flush and close the file; records after this are dropped, never printed."""
        logging.getLogger().handlers[:] = [logging.NullHandler()]
        self._handler.close()


def _handler(path: Path) -> logging.FileHandler:
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    return handler


def route_temporal_core(logger: logging.Logger) -> None:
    """Forward the Temporal core's warnings into ``logger`` instead of stdout.

    Must run before the first Temporal client or worker is built in this process: those use
    the default runtime, whose logging configuration is fixed when it is created.
    """
    # Imported here, not at the top: most commands import this module (through files.py),
    # and temporalio costs a start a fifth of a CPU-second that `--help`, a usage error or
    # `report` (which opens no log file) would pay for nothing.
    from temporalio.runtime import (
        LogForwardingConfig,
        LoggingConfig,
        Runtime,
        TelemetryConfig,
        TelemetryFilter,
    )

    forwarding = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
        forwarding=LogForwardingConfig(logger=logger),
    )
    runtime = Runtime(telemetry=TelemetryConfig(logging=forwarding))
    Runtime.set_default(runtime, error_if_already_set=False)
