"""Cold start: from a fresh `saga-compare` process to its first completed saga, per style.

Measured in a new interpreter each time (``python -m harness.bench.cold``), so the imports, the
embedded servers (and Postgres, when chosen) and the first saga's caches are all cold, as when
a user types the command. The child reports three points on its own clock, in seconds since
its process was created: imports done, servers and runtime ready, first saga completed.
"""

from __future__ import annotations

import time

STARTED = time.time()  # before the heavy imports below: they are part of a cold start

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

COLD_TIMEOUT_S = 180.0


async def cold_start(
    variant: str, activities: str | None, store: str, temporal_db: str = "file"
) -> dict[str, float]:
    """Run the child for one style; its three timings (seconds since it was created)."""
    argv = [sys.executable, "-m", "harness.bench.cold", "--variant", variant, "--store", store]
    argv += ["--temporal-db", temporal_db]
    if activities is not None:
        argv += ["--activities", activities]
    child = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(child.communicate(), COLD_TIMEOUT_S)
    except BaseException:
        child.kill()
        await child.wait()
        raise
    if child.returncode != 0:
        last = (err.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"cold start of {variant} failed: {last}")
    timings: dict[str, float] = json.loads(out.decode().strip().splitlines()[-1])
    return timings


def _process_start() -> float:
    """When this process was created (the clock a user's stopwatch starts on)."""
    import psutil

    return float(psutil.Process(os.getpid()).create_time())


async def _first_saga(args: argparse.Namespace, imported: float) -> dict[str, float]:
    from harness.bench.run import server_options
    from harness.bench.workload import SagaDriver
    from harness.compare.runner import new_run_tag
    from harness.session import open_session
    from shared.settings import Settings, StoreKind

    origin = _process_start()
    settings = Settings(store=StoreKind(args.store))
    with tempfile.TemporaryDirectory(prefix="saga-compare-cold-") as scratch:
        folder = Path(scratch)
        options: dict[str, dict[str, Any]] = {
            "orchestration": server_options(folder, args.temporal_db)
        }
        if args.activities is not None:
            options["orchestration"]["activities"] = args.activities
        # Traversable (not listable) by others: an embedded Postgres runs as its own user.
        folder.chmod(0o711)
        options["choreography"] = {"broker_state_dir": folder / "nats"}
        async with open_session(
            [args.variant],
            folder / "state",
            folder / "traces.jsonl",
            settings=settings,
            deployed=None,
            inject=False,
            options=options,
        ) as session:
            ready = time.time()
            driver = SagaDriver(session.runtimes[args.variant], new_run_tag(), COLD_TIMEOUT_S)
            await driver.prepare(1)
            if not await driver.one(0):
                raise SystemExit("the first saga did not complete")
            done = time.time()
    return {
        "imports_s": imported - origin,
        "ready_s": ready - origin,
        "first_saga_s": done - origin,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", required=True)
    parser.add_argument("--activities")
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--temporal-db", choices=["file", "memory"], default="file")
    args = parser.parse_args()
    import harness.session  # noqa: F401  (the command's own imports, timed as a cold start)

    imported = time.time()
    print(json.dumps(asyncio.run(_first_saga(args, imported))))


if __name__ == "__main__":
    main()
