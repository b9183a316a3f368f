"""`python -m choreography --service KIND`: run one process kind (or all) as its own process.

Configuration comes from the `SAGA_` settings (shared/settings.py) — the saga definition, the
data dir or Postgres store, NATS URLs and replicas, the NATS user this kind logs in as
(`SAGA_NATS_USER`, `SAGA_NATS_PASSWORD`), the durables' suffix, the hooks (none in
production) — and the flags below override them, so a container needs nothing but its
environment. The process kinds are the definition's services and the tracker. Each process
opens only the store it uses, makes sure the streams (never shrinking their replicas) and
every durable exist, and runs until SIGTERM or SIGINT. It prints one ``ready`` line once it
consumes, for supervisors and tests. Spans name the service and go to ``--trace-file`` /
``SAGA_TRACE_FILE`` and, when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, to that OTLP/HTTP
receiver. A setting that cannot be used is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from dataclasses import replace
from pathlib import Path

from choreography.access import read_login
from choreography.bootstrap import bootstrap
from choreography.host import TRACKER, ChoreographySettings, kinds_of_process
from shared.contracts import ServiceName
from shared.countermeasures import Countermeasures
from shared.definition import SagaDefinition
from shared.definitions import definition_named
from shared.hooks import load_hooks
from shared.servers import ServerError
from shared.settings import Settings, StoreKind
from shared.store import StoreError
from shared.store.factory import open_stores
from shared.telemetry import Component, configure_tracing, service_component
from shared.validation import InvalidInput, load_settings

ALL = "all"
ALL_COMPONENT = Component("choreography-services", "choreography")
"""Names spans outside any service's scope when one process runs all six (each host names its
own)."""


class UsageError(Exception):
    """A configuration this process cannot run with; the message names the fix."""


def parser() -> argparse.ArgumentParser:
    """The command line (also what the compose test parses each container's command with)."""
    parser = argparse.ArgumentParser(prog="python -m choreography", description=__doc__)
    parser.add_argument(
        "--service",
        required=True,
        metavar="KIND",
        help=f"a process kind of the saga definition (its services, {TRACKER}) or {ALL}",
    )
    parser.add_argument("--data-dir", type=Path, help="folder of the SQLite stores (SAGA_DATA_DIR)")
    parser.add_argument("--store", choices=[kind.value for kind in StoreKind], help="SAGA_STORE")
    parser.add_argument("--postgres-url", help="SAGA_POSTGRES_URL")
    parser.add_argument("--nats", help="NATS URL(s), comma-separated (SAGA_NATS_URL)")
    parser.add_argument("--consumer-suffix", help="appended to every durable consumer name")
    parser.add_argument("--ack-wait", type=float, help="consumer ack wait in seconds")
    parser.add_argument("--trace-file", type=Path, help="append spans as OTLP JSON lines here")
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    return parser().parse_args(argv)


def settings_from(args: argparse.Namespace, base: Settings) -> Settings:
    """The environment's settings with the flags given on top."""
    flags = {
        "data_dir": args.data_dir,
        "store": args.store,
        "postgres_url": args.postgres_url,
        "nats_url": args.nats,
        "nats_consumer_suffix": args.consumer_suffix,
        "nats_ack_wait_s": args.ack_wait,
        "trace_file": args.trace_file,
    }
    return base.model_copy(update={k: v for k, v in flags.items() if v is not None})


def kinds_of(service: str, definition: SagaDefinition) -> list[str]:
    return list(kinds_of_process(definition)) if service == ALL else [service]


def usage_problem(service: str, settings: Settings) -> str | None:
    """Why these settings cannot run this kind, or None (a single kind needs servers)."""
    kinds = kinds_of_process(definition_named(settings.definition))
    if service != ALL and service not in kinds:
        return (
            f"--service {service}: not a process kind of saga definition"
            f" {settings.definition!r}; use one of: {', '.join((*kinds, ALL))}"
        )
    if service == ALL:
        return None
    if not settings.nats_servers:
        return f"--service {service} needs a NATS server: pass --nats URL or set SAGA_NATS_URL"
    if settings.store is StoreKind.POSTGRES and not settings.postgres_url:
        return (
            f"--service {service} on Postgres needs its server: set SAGA_POSTGRES_URL"
            " (or --postgres-url)"
        )
    return None


async def serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run the chosen kinds until a stop signal; returns the exit code."""
    problem = usage_problem(args.service, settings)
    if problem is not None:
        raise UsageError(problem)
    definition = definition_named(settings.definition)
    kinds = kinds_of(args.service, definition)
    config = logged_in(ChoreographySettings.from_settings(settings), settings, kinds)
    async with (
        open_stores(settings) as stores,
        bootstrap(
            config,
            stores,
            definition,
            kinds=kinds,
            connection_name=f"saga-{args.service}-admin",
            hooks=load_hooks(settings.hooks, "choreography"),
            countermeasures=Countermeasures.parse(settings.countermeasures),
        ) as app,
    ):
        # Handlers only now: a signal during start-up keeps its default and ends the process.
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        print(f"ready {args.service} {app.servers[0]}", flush=True)
        await stop.wait()
    return 0


def logged_in(
    config: ChoreographySettings, settings: Settings, kinds: list[str]
) -> ChoreographySettings:
    """With a logins folder, each kind logs in as its own user, and the process's own
    connection (the set-up) as its first kind."""
    folder = settings.nats_logins_dir
    if folder is None:
        return config
    logins = {}
    for kind in kinds:
        login = read_login(folder / f"{kind}.json")
        if login is None:
            raise UsageError(f"SAGA_NATS_LOGINS_DIR={folder}: no login for {kind} ({kind}.json)")
        logins[kind] = login
    nats = replace(config.nats, login=logins[kinds[0]], logins=logins)
    return replace(config, nats=nats)


def component_of(service: str) -> Component:
    if service == ALL:
        return ALL_COMPONENT
    return service_component(ServiceName.ORDERS.value if service == TRACKER else service)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        settings = settings_from(args, load_settings())
    except InvalidInput as error:
        return _error(str(error))
    tracing = configure_tracing(component_of(args.service))
    tracing.attach(jsonl=settings.trace_file)  # and OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        return asyncio.run(serve(args, settings))
    except (UsageError, ServerError, ConnectionError, InvalidInput) as error:
        return _error(str(error))
    except StoreError as error:
        return _error(f"cannot use Postgres ({error}); check SAGA_POSTGRES_URL")
    except OSError as error:
        return _error(f"cannot reach NATS ({error}); check --nats or SAGA_NATS_URL")
    finally:
        with contextlib.suppress(Exception):
            tracing.shutdown()


def _error(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


__all__ = ["main", "parse", "parser", "settings_from", "usage_problem"]


if __name__ == "__main__":
    sys.exit(main())
