"""The saga worker: `python -m orchestration.worker` runs one against any server until SIGTERM.

Configuration comes from the `SAGA_` settings (shared/settings.py): SAGA_TEMPORAL_ADDRESS
(required here), SAGA_TEMPORAL_NAMESPACE, SAGA_TEMPORAL_TASK_QUEUE, the services' stores
(SAGA_DATA_DIR, or SAGA_STORE=postgres with SAGA_POSTGRES_URL and a schema prefix), tracing
through OTEL_EXPORTER_OTLP_ENDPOINT or SAGA_TRACE_FILE; the flags below override them. It
prints one ``ready`` line once it polls. A setting that cannot be used is one line, exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from orchestration.activities import VARIANT
from orchestration.bootstrap import (
    SAGA_SANDBOX,
    SANDBOXES,
    bootstrap,
    build_worker,
    saga_worker,
    workflow_runner,
)
from orchestration.server import TemporalSettings
from shared.countermeasures import Countermeasures
from shared.definitions import definition_named
from shared.hooks import load_hooks
from shared.servers import ServerError
from shared.settings import Settings, StoreKind
from shared.store import StoreError
from shared.store.factory import open_stores
from shared.telemetry import WORKER, configure_tracing
from shared.validation import InvalidInput, load_settings

log = logging.getLogger("orchestration.worker")

__all__ = [
    "SAGA_SANDBOX",
    "SANDBOXES",
    "build_worker",
    "main",
    "parser",
    "saga_worker",
    "settings_from",
    "usage_problem",
    "workflow_runner",
]


class UsageError(Exception):
    """A configuration this worker cannot run with; the message names the fix."""


def parser() -> argparse.ArgumentParser:
    """The command line (also what the compose test parses the worker's command with)."""
    parser = argparse.ArgumentParser(prog="python -m orchestration.worker", description=__doc__)
    parser.add_argument("--address", help="Temporal frontend HOST:PORT (SAGA_TEMPORAL_ADDRESS)")
    parser.add_argument("--namespace", help="SAGA_TEMPORAL_NAMESPACE")
    parser.add_argument("--task-queue", help="SAGA_TEMPORAL_TASK_QUEUE")
    parser.add_argument("--data-dir", type=Path, help="folder of the SQLite stores (SAGA_DATA_DIR)")
    parser.add_argument("--store", choices=[kind.value for kind in StoreKind], help="SAGA_STORE")
    parser.add_argument("--postgres-url", help="SAGA_POSTGRES_URL")
    parser.add_argument("--trace-file", type=Path, help="append spans as OTLP JSON lines here")
    return parser


def settings_from(args: argparse.Namespace, base: Settings) -> Settings:
    flags = {
        "temporal_address": args.address,
        "temporal_namespace": args.namespace,
        "temporal_task_queue": args.task_queue,
        "data_dir": args.data_dir,
        "store": args.store,
        "postgres_url": args.postgres_url,
        "trace_file": args.trace_file,
    }
    return base.model_copy(update={k: v for k, v in flags.items() if v is not None})


def usage_problem(settings: Settings) -> str | None:
    """Why these settings cannot run a worker, or None."""
    if not settings.temporal_address:
        return "set SAGA_TEMPORAL_ADDRESS (or --address) to the Temporal frontend"
    if settings.store is StoreKind.POSTGRES and not settings.postgres_url:
        return "a worker on Postgres needs its server: set SAGA_POSTGRES_URL"
    return None


async def serve(settings: Settings) -> int:
    """Run a worker until SIGTERM or SIGINT, then shut it down gracefully."""
    problem = usage_problem(settings)
    if problem is not None:
        raise UsageError(problem)
    tracing = configure_tracing(WORKER)  # service.name order-saga-worker
    tracing.attach(jsonl=settings.trace_file)
    config = TemporalSettings.from_settings(settings)
    try:
        async with (
            open_stores(settings) as stores,
            bootstrap(
                config,
                stores,
                definition_named(settings.definition),
                tracing=tracing,
                run_worker=True,
                hooks=load_hooks(settings.hooks, VARIANT),
                versioning=settings.workflow_versioning,
                countermeasures=Countermeasures.parse(settings.countermeasures),
            ),
        ):
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            log.info(
                "worker on %s, task queue %s, saga definition %s, workflow versioning %s",
                config.address,
                config.task_queue,
                settings.definition,
                settings.workflow_versioning,
            )
            print(f"ready worker {config.address} {config.task_queue}", flush=True)
            await stop.wait()
    except RuntimeError as error:
        if isinstance(error, ServerError):
            raise
        raise UsageError(
            f"cannot reach Temporal at {config.address} ({error}); start the server"
            " or fix SAGA_TEMPORAL_ADDRESS"
        ) from None
    finally:
        tracing.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parser().parse_args(argv)
    try:
        return asyncio.run(serve(settings_from(args, load_settings())))
    except (InvalidInput, UsageError, ServerError) as error:
        return _error(str(error))
    except StoreError as error:
        return _error(f"cannot use Postgres ({error}); check SAGA_POSTGRES_URL")
    except OSError as error:
        return _error(f"cannot start the worker ({error}); check SAGA_DATA_DIR")


def _error(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
