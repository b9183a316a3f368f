"""`python -m choreography --service NAME`: run one service (or all) as its own process.

Each service process opens only its own store, connects to NATS, makes sure the streams and
every durable exist, and runs its participant (the orders process runs the tracker too) until
SIGTERM or SIGINT. It prints one ``ready`` line once it consumes, for supervisors and tests.
Spans name the service (``service.name`` = inventory, payment ...) and go to ``--trace-file``
and, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to that OTLP/HTTP receiver.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

from choreography import schema
from choreography.broker import NatsBroker, NatsSettings, ServerError, ensure_streams
from choreography.bus import Bus
from choreography.host import ChoreographySettings, ensure_consumers, start_hosts
from choreography.tracker import Tracker
from shared.contracts import ServiceName
from shared.services import Domain
from shared.store import sqlite_stores
from shared.telemetry import Component, configure_tracing, service_component

ALL = "all"
ALL_COMPONENT = Component("choreography-services", "choreography")
"""Names spans outside any service's scope when one process runs all five (each host names its
own)."""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m choreography", description=__doc__)
    parser.add_argument("--service", required=True, choices=[*(s.value for s in ServiceName), ALL])
    parser.add_argument("--data-dir", required=True, type=Path, help="folder of the SQLite stores")
    parser.add_argument("--nats", help="NATS URL(s), comma-separated (default: SAGA_NATS_URL)")
    parser.add_argument("--consumer-suffix", help="appended to every durable consumer name")
    parser.add_argument("--ack-wait", type=float, help="consumer ack wait in seconds")
    parser.add_argument("--trace-file", type=Path, help="append spans as OTLP JSON lines here")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> ChoreographySettings:
    settings = ChoreographySettings.from_env()
    if args.nats:
        settings = replace(settings, nats=NatsSettings(url=args.nats))
    if args.consumer_suffix is not None:
        settings = replace(settings, consumer_suffix=args.consumer_suffix)
    if args.ack_wait is not None:
        settings = replace(settings, ack_wait_s=args.ack_wait)
    return settings


async def serve(args: argparse.Namespace) -> int:
    """Run the chosen services until a stop signal; returns the exit code."""
    settings = settings_from(args)
    services = list(ServiceName) if args.service == ALL else [ServiceName(args.service)]
    if settings.nats.embedded and args.service != ALL:
        print("error: a single service needs --nats URL (or SAGA_NATS_URL)", file=sys.stderr)
        return 2
    async with AsyncExitStack() as stack:
        servers = settings.nats.servers
        if settings.nats.embedded:
            broker = await stack.enter_async_context(NatsBroker())
            servers = [broker.url]
            settings = replace(settings, nats=NatsSettings(url=broker.url))
        domain = Domain(sqlite_stores(args.data_dir), extra_migrations=schema.MIGRATIONS)
        await domain.open(only=services)
        stack.push_async_callback(domain.close)
        admin = await Bus.connect(servers, f"saga-{args.service}-admin")
        stack.push_async_callback(admin.close)
        await ensure_streams(admin.js)
        await ensure_consumers(admin, settings)
        tracker = Tracker(domain.orders)
        await start_hosts(stack, services, domain, tracker, settings, servers)
        # Handlers only now: a signal during start-up keeps its default and ends the process.
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        print(f"ready {args.service} {servers[0]}", flush=True)
        await stop.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    own = ALL_COMPONENT if args.service == ALL else service_component(args.service)
    tracing = configure_tracing(own)
    tracing.attach(jsonl=args.trace_file)  # and OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        return asyncio.run(serve(args))
    except ServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"error: cannot reach NATS ({error}); check --nats", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(Exception):
            tracing.shutdown()


if __name__ == "__main__":
    sys.exit(main())
