"""What Temporal's workflow sandbox costs the saga: the floor in each sandbox setting, interleaved.

    .venv/bin/python scripts/sandbox_cost.py --orders 200 --concurrency 20 --rounds 3

The orchestration floor (the saga workflow itself with no-op activities,
harness/bench/floors/orchestration.py) runs on workers with each sandbox setting of
``saga_worker`` (full, passthrough, off) in turn, ``rounds`` times on one embedded dev
server; each run prints throughput, p50 and CPU ms per saga by process. The workflow code
is the saga's, so the difference is what the sandbox costs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from harness.bench.floors.orchestration import OrchestrationFloor
from harness.bench.measure import CLOSED, Load, Measurement, measure
from harness.bench.spans import SpanTail
from harness.bench.workload import FLOOR, FloorDriver, bench_order, bench_policy
from harness.session import open_session
from orchestration.runtime import OrchestrationRuntime
from orchestration.worker import SANDBOXES
from shared.settings import Settings


async def compare(args: argparse.Namespace) -> None:
    scratch = Path(tempfile.mkdtemp(prefix="saga-compare-sandbox-"))
    runs: dict[str, list[Measurement]] = {mode: [] for mode in SANDBOXES}
    async with open_session(
        ["orchestration"], scratch / "state", scratch / "traces.jsonl", settings=Settings(),
        inject=False,
    ) as session:  # fmt: skip
        runtime = session.runtimes["orchestration"]
        assert isinstance(runtime, OrchestrationRuntime)
        client = runtime.client
        session.tracing.set_enabled(False)
        tail = SpanTail(session.traces_path)
        for _ in range(args.rounds):
            for mode in SANDBOXES:
                floor = OrchestrationFloor(
                    client, bench_order("floor"), bench_policy(), sandbox=mode
                )
                async with floor:
                    driver = FloorDriver(FLOOR, floor.once)
                    await Load(CLOSED, orders=10, concurrency=5).drive(driver)
                    load = Load(CLOSED, orders=args.orders, concurrency=args.concurrency)
                    m = await measure("floor", "orchestration", driver, load, session.tracing, tail)
                runs[mode].append(m)
                print(_line(mode, m), flush=True)
    for mode, found in runs.items():
        worker = statistics.median(1000 * m.cpu_s.get("harness", 0) / m.sagas for m in found)
        rate = statistics.median(m.throughput for m in found)
        print(f"median {mode:11}: {rate:.1f} sagas/s, worker {worker:.1f} CPU ms/saga")


def _line(mode: str, m: Measurement) -> str:
    cpu = ", ".join(f"{k} {1000 * v / m.sagas:.1f}" for k, v in m.cpu_s.items())
    rate = f"{m.throughput:6.1f} sagas/s  p50 {m.p50_ms:6.0f} ms"
    return f"{mode:11} {rate}  CPU ms/saga: {cpu}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(compare(parser.parse_args()))


if __name__ == "__main__":
    main()
