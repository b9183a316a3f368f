"""The supervisor's control channel: JSON lines over a loopback TCP connection.

The supervisor of a deployment (harness/deploy/supervisor.py) listens on a free loopback port and
writes the port and a random token into the topology file, which only its owner can read.
One request per line, one answer per line:

- ``{"op": "status"}``: every process kind, its pid, whether it runs and is ready, restarts;
- ``{"op": "kill", "kind": K, "down_s": D}``: SIGKILL kind K now and hold it down D seconds
  before it is restarted (chaos); answers with the pid killed and the time;
- ``{"op": "release", "kind": K}``: end K's hold now (it is restarted at once);
- ``{"op": "wait_ready", "kind": K, "timeout_s": T, "not_pid": P}``: answers once K runs and
  is ready again (with ``not_pid``: in a process other than P, one killed from outside);
- ``{"op": "stop"}``: stop everything (what ``saga-compare down`` asks).

Every request carries ``"token"``; an answer is ``{"ok": true, ...}`` or ``{"ok": false,
"error": "..."}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from shared.servers import LOOPBACK, ServerError

Answer = dict[str, Any]
Handler = Callable[[dict[str, Any]], Awaitable[Answer]]
LINE_LIMIT = 1 << 20


class ControlAddress(BaseModel):
    """Where the control channel listens and the secret a request must carry."""

    model_config = ConfigDict(frozen=True)

    host: str = LOOPBACK
    port: int
    token: str


class ControlError(ServerError):
    """The supervisor could not be reached or refused a request; the message says which."""


async def serve(handler: Handler, token: str) -> asyncio.Server:
    """Listen on a free loopback port; each line is handed to ``handler`` once authenticated."""

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                answer = await _answer(handler, token, line)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(connection, LOOPBACK, 0, limit=LINE_LIMIT)


async def _answer(handler: Handler, token: str, line: bytes) -> Answer:
    try:
        request = json.loads(line)
    except ValueError:
        return {"ok": False, "error": "not a JSON line"}
    if not isinstance(request, dict) or request.get("token") != token:
        return {"ok": False, "error": "wrong or missing token"}
    try:
        return await handler(request)
    except Exception as error:  # answered, never a dead channel
        return {"ok": False, "error": f"{type(error).__name__}: {error}"}


async def request(
    address: ControlAddress, op: str, *, wait_s: float = 30.0, **fields: Any
) -> Answer:
    """Send one request and return the answer; ControlError when unreachable or refused."""
    message = {"token": address.token, "op": op, **fields}
    try:
        async with asyncio.timeout(wait_s):
            reader, writer = await asyncio.open_connection(address.host, address.port)
            try:
                writer.write(json.dumps(message).encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError) as error:
        raise ControlError(
            f"the deployment's supervisor does not answer on {address.host}:{address.port}"
            f" ({error or 'timed out'}); is it up? see `saga-compare up`"
        ) from None
    answer: Answer = json.loads(line) if line else {"ok": False, "error": "no answer"}
    if not answer.get("ok"):
        raise ControlError(f"the supervisor refused {op}: {answer.get('error')}")
    return answer
