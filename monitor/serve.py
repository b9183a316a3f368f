"""Serve the monitor with uvicorn inside the caller's event loop, beside the runtimes it reads.

The socket is bound here first, so a port in use is one line naming it rather than uvicorn's
exit; uvicorn's own signal handling is off, so the harness keeps SIGINT/SIGTERM (harness/guard).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette

from monitor.settings import is_loopback
from shared.servers import ServerError


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: whoever runs the loop decides when to stop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port), or one line saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        reason = "in use" if error.errno == 98 else (error.strerror or str(error))
        raise ServerError(
            f"the monitor cannot listen on {host}:{port} ({reason}); pass another --port"
        ) from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@asynccontextmanager
async def serving(app: Starlette, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` until the block ends; yields the monitor's address once it answers."""
    sock = bind(host, port)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="saga monitor")
    try:
        while not server.started:
            if task.done():
                task.result()
                raise ServerError("the monitor stopped while starting; see its log")
            await asyncio.sleep(0.02)
        yield url_of(sock)
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, timeout=5)
        sock.close()


def announce_host(host: str) -> str | None:
    """A warning line when the monitor listens beyond loopback."""
    if is_loopback(host):
        return None
    return f"the monitor listens on {host}: anyone who reaches it sees every saga"
