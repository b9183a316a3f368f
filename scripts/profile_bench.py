"""Profile one measured benchmark run with py-spy: where the harness process's CPU goes.

    .venv/bin/python scripts/profile_bench.py --variant choreography --orders 300 -c 50
    .venv/bin/python scripts/profile_bench.py --variant choreography --untraced
    .venv/bin/python scripts/profile_bench.py --variant orchestration --activities local
    .venv/bin/python scripts/profile_bench.py --variant orchestration --activities local --floor

It opens the same session the benchmark opens (embedded servers, the chosen store), warms up,
then samples this process with py-spy (``--nonblocking``: the process is never paused) for
exactly one measured closed run, and prints a table of CPU by category (harness/bench/
profile.py) with the run's CPU per saga by process. The services (choreography) or the worker
(orchestration) run inside this process, as in the benchmark; the servers are not sampled.
``--floor`` profiles the style's floor instead of its sagas (tracing off, as the bench runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness.bench.measure import CLOSED, Load, measure
from harness.bench.profile import markdown, read_profile
from harness.bench.run import Style
from harness.bench.spans import SpanTail
from harness.bench.workload import FLOOR, Driver, FloorDriver, SagaDriver, open_floor
from harness.compare.runner import new_run_tag
from harness.session import open_session
from shared.settings import Settings, StoreKind


class Watched(SagaDriver):
    """The run's sagas; the last one to end stops the profiler (the run's own analysis
    afterwards, reading spans and checking invariants, is not what is profiled)."""

    def __init__(self, inner: SagaDriver, sagas: int, stop: Callable[[], None]) -> None:
        super().__init__(inner.runtime, inner.tag, inner.timeout_s)
        self.seed = inner.seed
        self._left = sagas
        self._stop = stop

    async def one(self, index: int) -> bool:
        try:
            return await super().one(index)
        finally:
            self._left -= 1
            if self._left == 0:
                self._stop()


class WatchedFloor:
    """A floor's chains, the last one to end stopping the profiler, as ``Watched`` does."""

    def __init__(self, inner: FloorDriver, runs: int, stop: Callable[[], None]) -> None:
        self.kind = inner.kind
        self._inner = inner
        self._left = runs
        self._stop = stop

    async def one(self, index: int) -> bool:
        try:
            return await self._inner.one(index)
        finally:
            self._left -= 1
            if self._left == 0:
                self._stop()


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("error: py-spy is missing; install the dev extras (pip install -e .[dev])")
    return found


async def profile(args: argparse.Namespace, out: Path) -> None:
    style = Style(args.variant, args.activities if args.variant == "orchestration" else None)
    settings = Settings(store=StoreKind(args.store))
    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-profile-"))
    scratch.chmod(0o711)  # an embedded Postgres runs as its own user and must enter it
    options: dict[str, dict[str, object]] = {"choreography": {"broker_state_dir": scratch / "n"}}
    if style.activities is not None:
        options["orchestration"] = {"activities": style.activities}
    try:
        async with open_session(
            [style.variant], scratch / "state", scratch / "traces.jsonl", settings=settings,
            inject=False, options=options,
        ) as session:  # fmt: skip
            runtime = session.runtimes[style.variant]
            session.tracing.set_enabled(not args.untraced)
            warm = SagaDriver(runtime, new_run_tag(), 600)
            await warm.prepare(20)
            await Load(CLOSED, orders=20, concurrency=5).drive(warm)
            load = Load(CLOSED, orders=args.orders, concurrency=args.concurrency)
            async with contextlib.AsyncExitStack() as stack:
                watched: Driver
                if args.floor:
                    session.tracing.set_enabled(False)
                    floor = await stack.enter_async_context(
                        open_floor(runtime, FLOOR, session.stores)
                    )
                    await Load(CLOSED, orders=20, concurrency=5).drive(floor)
                else:
                    driver = SagaDriver(runtime, new_run_tag(), 600)
                    await driver.prepare(args.orders)
                spy = subprocess.Popen(
                    [py_spy(), "record", "--pid", str(os.getpid()), "--rate", str(args.rate_hz),
                     "--format", "raw", "--output", str(out), "--nonblocking",
                     *(["--gil"] if args.gil else [])],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                await asyncio.sleep(1.0)  # py-spy attaches before the measured run starts
                tail = SpanTail(session.traces_path)

                def stop() -> None:
                    spy.send_signal(signal.SIGINT)

                if args.floor:
                    watched = WatchedFloor(floor, args.orders, stop)
                else:
                    watched = Watched(driver, args.orders, stop)
                try:
                    m = await measure(
                        style.name, style.variant, watched, load, session.tracing, tail
                    )
                finally:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(timeout=60)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(args, out, m.sagas, m.throughput, m.cpu_s)


def report(
    args: argparse.Namespace, out: Path, sagas: int, throughput: float, cpu: dict[str, float]
) -> None:
    traced = "floor" if args.floor else "untraced" if args.untraced else "traced"
    print(f"{args.variant} ({traced}, {args.store}): {sagas} sagas at concurrency "
          f"{args.concurrency}, {throughput:.1f} sagas/s; CPU ms/saga by process: "
          + ", ".join(f"{k} {1000 * v / sagas:.1f}" for k, v in cpu.items()))  # fmt: skip
    with out.open(encoding="utf-8") as lines:
        found = read_profile(lines)
    print(markdown(found, 1000 * cpu.get("harness", 0.0) / sagas))
    print(f"raw stacks: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("choreography", "orchestration"), required=True)
    parser.add_argument("--activities", choices=("remote", "local"), default="remote")
    parser.add_argument("--orders", "-n", type=int, default=300)
    parser.add_argument("--concurrency", "-c", type=int, default=50)
    parser.add_argument("--untraced", action="store_true")
    parser.add_argument("--floor", action="store_true", help="profile the style's floor")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--rate-hz", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--out", type=Path, help="where the raw stacks go")
    parser.add_argument(
        "--gil", action="store_true", help="sample only the thread holding the GIL (py-spy --gil)"
    )
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="saga-compare-pyspy-")) / "stacks.txt"
    asyncio.run(profile(args, out))


if __name__ == "__main__":
    main()
