"""Check the servers the settings name before anything starts, so a typo is one line, not a hang.

`SAGA_NATS_URL` and `SAGA_TEMPORAL_ADDRESS` point the variants at existing servers. A
malformed value, a host that does not answer, or a server of the wrong kind is refused here,
with the variable to fix, before an embedded server or a worker has been started.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from shared.settings import Settings
from shared.validation import InvalidInput

PROBE_TIMEOUT_S = 5.0
NATS_SCHEMES = {"nats": 4222, "tls": 4222, "ws": 80, "wss": 443}
NATS_FIX = (
    "fix SAGA_NATS_URL (nats://HOST:PORT, comma-separated) or unset it for an embedded server"
)
TEMPORAL_FIX = "fix SAGA_TEMPORAL_ADDRESS (HOST:PORT) or unset it for an embedded server"


async def check_servers(settings: Settings, variants: list[str]) -> None:
    """Refuse configured servers the chosen variants cannot use; embedded ones need no check."""
    if "choreography" in variants and settings.nats_url:
        await check_nats(settings.nats_url)
    if "orchestration" in variants and settings.temporal_address:
        await check_temporal(settings.temporal_address, settings.temporal_namespace)


def nats_servers(url: str) -> list[tuple[str, str, int]]:
    """Split SAGA_NATS_URL into (scheme, host, port); raise InvalidInput on a malformed one."""
    servers = []
    for part in (p.strip() for p in url.split(",")):
        if not part:
            continue
        parsed = urlsplit(part if "://" in part else f"nats://{part}")
        try:
            port = parsed.port
        except ValueError:
            port = -1
        host = parsed.hostname or ""
        if parsed.scheme not in NATS_SCHEMES or not host or port == -1 or _bad_host(host):
            raise InvalidInput(f"SAGA_NATS_URL={url!r}: {part!r} is not a NATS URL; {NATS_FIX}")
        servers.append((parsed.scheme, host, port or NATS_SCHEMES[parsed.scheme]))
    if not servers:
        raise InvalidInput(f"SAGA_NATS_URL={url!r} names no server; {NATS_FIX}")
    return servers


async def check_nats(url: str) -> None:
    """At least one server answers, and a plain-TCP one greets like NATS (``INFO {...}``)."""
    problems = []
    for scheme, host, port in nats_servers(url):
        problem = await _nats_problem(scheme, host, port)
        if problem is None:
            return
        problems.append(f"{host}:{port} {problem}")
    raise InvalidInput(f"cannot use NATS at {url} ({'; '.join(problems)}); {NATS_FIX}")


async def _nats_problem(scheme: str, host: str, port: int) -> str | None:
    try:
        reader, writer = await _connect(host, port)
    except OSError as error:
        return _reason(error)
    try:
        if scheme in ("ws", "wss"):
            return None
        greeting = await asyncio.wait_for(reader.readline(), PROBE_TIMEOUT_S)
        return None if greeting.startswith(b"INFO ") else "answers, but not as a NATS server"
    except (OSError, TimeoutError):
        return "accepts connections but says nothing (not a NATS server?)"
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def temporal_target(address: str) -> tuple[str, int]:
    """Split SAGA_TEMPORAL_ADDRESS into host and port; raise InvalidInput on a malformed one."""
    host, _, port = address.rpartition(":")
    if "://" in address or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput(f"SAGA_TEMPORAL_ADDRESS={address!r} is not HOST:PORT; {TEMPORAL_FIX}")
    bare = host.removeprefix("[").removesuffix("]")
    if _bad_host(bare):
        raise InvalidInput(f"SAGA_TEMPORAL_ADDRESS={address!r} is not HOST:PORT; {TEMPORAL_FIX}")
    return bare, int(port)


async def check_temporal(address: str, namespace: str) -> None:
    """The frontend answers, speaks Temporal, and has the namespace the settings name."""
    host, port = temporal_target(address)
    try:
        _, writer = await _connect(host, port)
    except OSError as error:
        raise InvalidInput(
            f"cannot reach Temporal at {address} ({_reason(error)}); {TEMPORAL_FIX}"
        ) from None
    writer.close()
    try:
        client = await asyncio.wait_for(Client.connect(address), PROBE_TIMEOUT_S)
        request = DescribeNamespaceRequest(namespace=namespace)
        await client.workflow_service.describe_namespace(
            request, timeout=timedelta(seconds=PROBE_TIMEOUT_S)
        )
    except RPCError as error:
        if error.status is RPCStatusCode.NOT_FOUND:
            raise InvalidInput(
                f"Temporal at {address} has no namespace {namespace!r}; create it or fix "
                "SAGA_TEMPORAL_NAMESPACE"
            ) from None
        raise InvalidInput(f"Temporal at {address} refused a request; {TEMPORAL_FIX}") from None
    except (RuntimeError, ValueError, TimeoutError):
        raise InvalidInput(
            f"{address} accepts connections but does not answer as Temporal; {TEMPORAL_FIX}"
        ) from None


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_connection(host, port), PROBE_TIMEOUT_S)
    except TimeoutError:
        raise TimeoutError(f"no answer within {PROBE_TIMEOUT_S:g}s") from None


def _reason(error: OSError) -> str:
    if isinstance(error, socket.gaierror):
        return "unknown host"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return str(error)
    return error.strerror or str(error)


def _bad_host(host: str) -> bool:
    return any(char.isspace() or char in "/@?#" for char in host)
