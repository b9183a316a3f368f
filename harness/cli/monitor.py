"""`saga-compare monitor` and `demo --monitor`: the live page, served beside the runtimes.

The page reads both styles through their read APIs only (monitor/); here it is only started,
announced (its address on stdout) and stopped with the command.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from harness.cli.console import note, say
from harness.cli.guard import until_signal
from monitor.app import create_app, fixed
from monitor.attach import NOTHING_TO_WATCH, attached_board
from monitor.security import Guard
from monitor.serve import announce_host, serving
from monitor.settings import MonitorSettings, is_loopback, load_monitor_settings
from monitor.wiring import board_for
from shared.settings import Settings
from shared.validation import InvalidInput

DEFAULT_PORT = 8765


def monitor_settings() -> MonitorSettings:
    """SAGA_MONITOR_* settings, or the one line naming the variable to fix."""
    try:
        return load_monitor_settings()
    except ValueError as error:
        raise InvalidInput(str(error)) from None


def _guard(host: str, settings: MonitorSettings) -> Guard:
    guard = Guard(loopback=is_loopback(host), token=settings.token, operators=settings.operators)
    warning = announce_host(host)
    if warning:
        acts = settings.token or settings.operators
        note(warning + ("" if acts else "; read-only without SAGA_MONITOR_OPERATORS"))
    return guard


@asynccontextmanager
async def embedded_monitor(
    runtimes: Mapping[str, object], host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """The page over runtimes this process opened (the demo's); says where it is."""
    settings = monitor_settings()
    board = board_for(runtimes, settings)
    async with serving(create_app(fixed(board), _guard(host, settings)), host, port) as url:
        say(f"monitor: {url}/ (up until the run ends)")
        yield url


async def attached_monitor(
    settings: Settings, host: str, port: int, temporal_ui: str | None = None
) -> int:
    """Serve the page over the deployment the settings name until Ctrl-C (exit 0); its
    Temporal Web UI is ``temporal_ui`` unless SAGA_MONITOR_TEMPORAL_UI_URL names one."""
    chosen = monitor_settings()
    if chosen.temporal_ui_url is None and temporal_ui is not None:
        chosen = chosen.model_copy(update={"temporal_ui_url": temporal_ui})
    if not settings.temporal_address and not settings.nats_url:
        raise InvalidInput(NOTHING_TO_WATCH)
    async with attached_board(settings, chosen) as board:
        app = create_app(fixed(board), _guard(host, chosen))
        async with serving(app, host, port) as url:
            say(f"monitor: {url}/ (Ctrl-C stops it)")
            await until_signal()
    note("monitor stopped")
    return 0
