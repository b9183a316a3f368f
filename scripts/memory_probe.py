"""What grows in an open-model bench run: the harness's heap by traceback, and its servers.

    .venv/bin/python scripts/memory_probe.py --variant orchestration --activities remote \
        --rate 5 --duration 1500 --snapshots 1500,3000 \
        --out docs/bench-run/memory-probe/orchestration-remote

Runs what ``saga-compare bench --rate R --duration D --no-cold-start`` runs for one style (a
session as ``Bench._session`` opens it, ten warm-up sagas, then ``SagaDriver`` under
``open_loop``), in this process, with ``tracemalloc`` on from before the session opens (so
the worker, the SDK, the exporter and the services are traced, not only the bench), or from
the ``--trace-from``-th ended saga (tracing every allocation slows the workflow sandbox so
much that a loaded machine's workflow tasks time out). When the N-th saga has ended for each
N of ``--snapshots`` it collects garbage and takes a heap snapshot and a count of live
objects by type; at the end it writes each later snapshot against the first, grouped by
traceback (``compare-*.txt``: the top entries, ``--frames`` frames each), by file
(``by_file-*.txt``) and by type (``types-*.txt``).

Every ``--every`` seconds it writes a line of ``series.jsonl``: sagas ended, resident MB of
each process (the harness and its children: the broker or the Temporal server), the heap
tracemalloc sees, and the server's own view: the Temporal dev server's Go runtime
(``memory_heap*``, ``num_goroutines`` from its ``/metrics``, on the random port
``start-dev`` opens) and its SQLite file's size, or the NATS broker's ``/varz`` (mem) and
``/jsz`` (messages, bytes).
"""

from __future__ import annotations

import _sqlite3
import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import os
import re
import shutil
import sys
import time
import tracemalloc
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from harness.bench.load import open_loop
from harness.bench.run import WARMUP, server_options
from harness.bench.workload import SagaDriver
from harness.compare.runner import new_run_tag
from harness.session import open_session
from shared.runtime import SagaRuntime
from shared.settings import Settings

GO_METRICS = (
    "memory_heap",
    "memory_heapinuse",
    "memory_heapidle",
    "memory_heapreleased",
    "memory_heap_objects",
    "memory_stack",
    "num_goroutines",
)
"""The Go runtime's figures the server reports (one process: read under its history service)."""
MB = 1024 * 1024


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("choreography", "orchestration"), required=True)
    parser.add_argument("--activities", choices=("remote", "local"), default="remote")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--snapshots", default="1500,3000", help="ended-saga counts")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument(
        "--trace-from",
        type=int,
        default=0,
        help="start tracemalloc once this many sagas have ended (0: before the session opens)",
    )
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/memory-probe"))
    return parser.parse_args()


def rss_by_kind() -> dict[str, float]:
    """Resident MB of this process and each child, by what the child is."""
    me = psutil.Process()
    out = {"harness": me.memory_info().rss / MB}
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            name = child.name()
            kind = "broker" if "nats" in name else "server" if "temporal" in name else name
            out[kind] = out.get(kind, 0.0) + child.memory_info().rss / MB
    return out


def http_get(url: str, timeout: float = 5.0) -> str | None:
    with (
        contextlib.suppress(OSError, ValueError),
        urllib.request.urlopen(url, timeout=timeout) as response,
    ):
        return str(response.read().decode("utf-8", errors="replace"))
    return None


def temporal_metrics_url() -> str | None:
    """The dev server's ``/metrics`` (a random port): the listening port that answers it."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "temporal" not in child.name():
                continue
            for conn in child.net_connections(kind="tcp"):
                if conn.status != psutil.CONN_LISTEN:
                    continue
                url = f"http://127.0.0.1:{conn.laddr.port}/metrics"
                text = http_get(url, timeout=1.0)
                if text and "memory_heapinuse" in text:
                    return url
    return None


def go_runtime(text: str) -> dict[str, float]:
    """The Go runtime's figures from a Prometheus text page."""
    out: dict[str, float] = {}
    for name in GO_METRICS:
        found = re.search(rf'^{name}{{service_name="history"}} ([0-9.e+-]+)$', text, re.MULTILINE)
        if found:
            out[name] = float(found.group(1))
    return out


def server_view(runtime: SagaRuntime, scratch: Path, state: dict[str, Any]) -> dict[str, Any]:
    """The broker's or the Temporal server's own account of its memory and what it stores."""
    if runtime.variant == "choreography":
        monitor = runtime.app.broker.monitor_url  # type: ignore[attr-defined]
        varz = json.loads(http_get(f"{monitor}/varz") or "{}")
        jsz = json.loads(http_get(f"{monitor}/jsz") or "{}")
        return {
            "varz_mem_mb": varz.get("mem", 0) / MB,
            "jsz_messages": jsz.get("messages"),
            "jsz_bytes_mb": (jsz.get("bytes") or 0) / MB,
            "jsz_memory_mb": (jsz.get("memory") or 0) / MB,
            "jsz_storage_mb": (jsz.get("storage") or 0) / MB,
            "jsz_consumers": jsz.get("consumers"),
        }
    if "metrics" not in state:
        state["metrics"] = temporal_metrics_url()
    view: dict[str, Any] = {"metrics_url": state["metrics"]}
    if state["metrics"]:
        view.update(go_runtime(http_get(state["metrics"]) or ""))
    files = list(scratch.rglob("temporal.db*"))
    view["db_files_mb"] = {f.name: f.stat().st_size / MB for f in files if f.exists()}
    return view


async def sample_every(
    every: float, ended: Callable[[], int], runtime: SagaRuntime, scratch: Path, out: Path
) -> None:
    origin = time.perf_counter()
    state: dict[str, Any] = {}
    with out.open("w") as stream:
        while True:
            line = {
                "t_s": round(time.perf_counter() - origin, 1),
                "ended": ended(),
                "load1": os.getloadavg()[0],
                "rss_mb": rss_by_kind(),
                "traced_mb": tracemalloc.get_traced_memory()[0] / MB,
                "tracemalloc_own_mb": tracemalloc.get_tracemalloc_memory() / MB,
                "py_blocks": sys.getallocatedblocks(),
                "sqlite_mb": sqlite_memory_used() / MB,
                "server": await asyncio.to_thread(server_view, runtime, scratch, state),
            }
            stream.write(json.dumps(line) + "\n")
            stream.flush()
            print(json.dumps(line), file=sys.stderr, flush=True)
            await asyncio.sleep(every)


def object_counts() -> Counter[str]:
    """Live objects the garbage collector tracks, by type (cheap: no tracing needed)."""
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())


def write_counts(
    first: tuple[int, Counter[str]], later: tuple[int, Counter[str]], out: Path
) -> None:
    """Which types of object grew between two points, and by how many per saga."""
    (n0, c0), (n1, c1) = first, later
    sagas = max(n1 - n0, 1)
    grown = sorted(((c1[k] - c0[k], k) for k in c1.keys() | c0.keys()), reverse=True)
    lines = [f"objects the collector tracks, at {n1} sagas ended against {n0} ({sagas} apart)\n"]
    lines += [f"{d:+9d} {d / sagas:+8.2f}/saga  {name}\n" for d, name in grown[:30] if d > 0]
    (out / f"types-{n0}-{n1}.txt").write_text("".join(lines))


def sqlite_memory_used() -> int:
    """What SQLite's own allocator holds in this process (page caches, statements): memory
    outside Python's heap, which tracemalloc does not see."""
    used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
    used.restype = ctypes.c_int64
    return int(used())


def snapshot() -> tracemalloc.Snapshot:
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(
        (tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"))
    )


def write_compare(
    first: tuple[int, tracemalloc.Snapshot],
    later: tuple[int, tracemalloc.Snapshot],
    top: int,
    out: Path,
) -> None:
    """The later snapshot against the first, by traceback and by file, with KB per saga."""
    (n0, s0), (n1, s1) = first, later
    sagas = max(n1 - n0, 1)
    total = sum(s.size_diff for s in s1.compare_to(s0, "filename"))
    head = (
        f"snapshot at {n1} sagas ended against {n0}: {sagas} sagas apart; traced heap "
        f"{total / 1024:+.0f} KiB in all, {total / 1024 / sagas:+.2f} KiB per saga\n\n"
    )
    lines = [head]
    for rank, stat in enumerate(s1.compare_to(s0, "traceback")[:top], 1):
        lines.append(
            f"#{rank}: {stat.size_diff / 1024:+.0f} KiB ({stat.size_diff / 1024 / sagas:+.3f} "
            f"KiB/saga), {stat.count_diff:+d} blocks ({stat.count_diff / sagas:+.2f}/saga), "
            f"now {stat.size / 1024:.0f} KiB in {stat.count} blocks\n"
        )
        lines += [f"    {line}\n" for line in stat.traceback.format(most_recent_first=True)]
        lines.append("\n")
    (out / f"compare-{n0}-{n1}.txt").write_text("".join(lines))
    by_file = [head]
    for stat in s1.compare_to(s0, "filename")[: top * 2]:
        frame = stat.traceback[0]
        by_file.append(
            f"{stat.size_diff / 1024:+10.0f} KiB {stat.size_diff / 1024 / sagas:+8.3f} KiB/saga "
            f"{stat.count_diff:+8d} blocks  {frame.filename}\n"
        )
    (out / f"by_file-{n0}-{n1}.txt").write_text("".join(by_file))


async def probe(args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    marks = sorted(int(n) for n in args.snapshots.split(","))
    if args.trace_from == 0:
        tracemalloc.start(args.frames)
    settings = Settings()  # the store SAGA_STORE names: SQLite unless set
    folder = scratch_of(args)
    options: dict[str, dict[str, Any]] = {
        "choreography": {"broker_state_dir": folder / "nats"},
        "orchestration": {**server_options(folder, "file"), "activities": args.activities},
    }
    async with open_session(
        [args.variant],
        folder / "state",
        folder / "traces.jsonl",
        settings=settings,
        inject=False,
        options=options,
    ) as session:
        runtime = session.runtimes[args.variant]
        session.tracing.set_enabled(True)
        warm = SagaDriver(runtime, new_run_tag(), 600.0)
        await warm.prepare(WARMUP)
        for index in range(WARMUP):
            await warm.one(index)
        count = max(1, round(args.rate * args.duration))
        driver = SagaDriver(runtime, new_run_tag(), 600.0)
        await driver.prepare(count)
        taken: list[tuple[int, tracemalloc.Snapshot]] = []
        counts: list[tuple[int, Counter[str]]] = []
        ended = begun = 0
        at: list[dict[str, Any]] = []

        async def one(index: int) -> bool:
            nonlocal ended, begun
            begun += 1
            try:
                return await driver.one(index)
            finally:
                ended += 1
                if ended == args.trace_from:
                    tracemalloc.start(args.frames)
                if marks and ended == marks[0]:
                    if tracemalloc.is_tracing():
                        taken.append((marks[0], snapshot()))
                    counts.append((marks.pop(0), object_counts()))
                    at.append({"ended": ended, "in_flight": begun - ended, "rss": rss_by_kind()})
                    print(f"snapshot: {at[-1]}", file=sys.stderr, flush=True)

        sampler = asyncio.create_task(
            sample_every(args.every, lambda: ended, runtime, folder, args.out / "series.jsonl")
        )
        started = time.perf_counter()
        samples = await open_loop(args.rate, args.duration, one)
        wall = time.perf_counter() - started
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
    ok = sum(1 for s in samples if s.ok)
    summary = {
        "variant": args.variant,
        "activities": args.activities if args.variant == "orchestration" else None,
        "rate": args.rate,
        "duration_s": args.duration,
        "sagas": len(samples),
        "completed": ok,
        "wall_s": wall,
        "snapshots": at,
        "frames": args.frames,
        "traced_from_saga": args.trace_from,
        "load_at_end": os.getloadavg(),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for later in taken[1:]:
        write_compare(taken[0], later, args.top, args.out)
    for counted in counts[1:]:
        write_counts(counts[0], counted, args.out)


def scratch_of(args: argparse.Namespace) -> Path:
    """This run's servers' and stores' folder, removed at the end (as the bench's are)."""
    return Path(args.scratch) / f"{args.variant}-{os.getpid()}"


def main() -> None:
    args = arguments()
    try:
        asyncio.run(probe(args))
    finally:
        shutil.rmtree(scratch_of(args), ignore_errors=True)


if __name__ == "__main__":
    main()
