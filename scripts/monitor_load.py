"""How much one refresh of the monitor costs with N sagas per style listed (docs/monitor.md).

Fills both styles' read sides without running the sagas: N OrderSaga workflows started on a
task queue no worker polls (visible, RUNNING, with their search attributes), and N tracker rows
written through the tracker's own start path (most of them then closed). Then it serves the
monitor and times what one open page asks for every refresh, with the read cache off.

    .venv/bin/python scripts/monitor_load.py --sagas 10000
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from choreography.events import placed
from harness.compare.scenarios import order
from harness.session import VARIANTS, open_session
from monitor.app import create_app, fixed
from monitor.board import Board
from monitor.security import Guard
from monitor.serve import serving
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from orchestration.messages import SagaInput
from orchestration.visibility import start_attributes
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import SagaPolicy
from shared.definitions import ORDERS_V1
from shared.read_model import SagaQuery

PATHS = (
    "/live/overview",
    "/live/list",
    "/live/list?status=NEEDS_INTERVENTION",
    "/live/list?q=load-4242",
    "/api/sagas?limit=50&after=o1000000000",
)


async def fill_orchestration(runtime: object, count: int) -> None:
    client = runtime.client  # type: ignore[attr-defined]
    policy = SagaPolicy()
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        saga = order(f"load-{i}")
        async with gate:
            await client.start_workflow(
                OrderSagaWorkflow.run,
                SagaInput(saga_id=f"load-{i}-o", order=saga, policy=policy),
                id=f"load-{i}-o",
                task_queue="nobody-polls-this",
                search_attributes=start_attributes(saga),
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def fill_choreography(runtime: object, count: int) -> None:
    tracker = runtime.tracker  # type: ignore[attr-defined]
    store = tracker.store
    now = time.time()
    events = [
        placed(f"load-{i}-c", order(f"load-{i}"), SagaPolicy(), now - i * 0.01, ORDERS_V1.ref)
        for i in range(count)
    ]

    def work(tx: object) -> None:
        for event in events:
            tracker.record_start(tx, event, None)
        ended = [(now - i * 0.005, e.saga_id) for i, e in enumerate(events) if i % 10]
        tx.executemany(  # type: ignore[attr-defined]
            "UPDATE sagas SET status = 'COMPLETED', phase = 'closed', updated_at = ?,"
            " ended_at = ? WHERE saga_id = ?",
            [(at, at, saga_id) for at, saga_id in ended],
        )

    await store.run(work)


async def measure(url: str, rounds: int) -> dict[str, tuple[float, float, int]]:
    timings: dict[str, tuple[float, float, int]] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for path in PATHS:
            took, size = [], 0
            for _ in range(rounds):
                started = time.perf_counter()
                answer = await client.get(path)
                took.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200, (path, answer.text[:200])
                size = len(answer.content)
            etag = answer.headers.get("etag", "")
            again = await client.get(path, headers={"If-None-Match": etag})
            timings[path] = (
                statistics.median(took),
                max(took),
                size if again.status_code != 304 else -size,
            )
    return timings


async def parts(board: Board, rounds: int) -> None:
    """Each read API call on its own: where a refresh's time goes."""
    now = time.time()
    quiet, warn = board.settings.stuck_after_s, board.settings.deadline_warning_s
    for variant, model in board.models.items():
        calls = {
            "list_sagas (first page)": lambda m=model: m.list_sagas(SagaQuery(limit=51), now),
            "alerts": lambda m=model: m.alerts(now, quiet, warn),
            "interventions": lambda m=model: m.interventions(),
            "counters": lambda m=model: m.counters(now),
        }
        for name, call in calls.items():
            took = []
            for _ in range(rounds):
                started = time.perf_counter()
                await call()
                took.append((time.perf_counter() - started) * 1000)
            print(f"{variant:14} {name:24} median {statistics.median(took):7.1f} ms")


async def main(count: int, rounds: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="monitor-load-"))
    async with open_session(list(VARIANTS), folder / "state", folder / "traces.jsonl") as session:
        started = time.perf_counter()
        await fill_orchestration(session.runtimes["orchestration"], count)
        await fill_choreography(session.runtimes["choreography"], count)
        print(f"filled {count} sagas per style in {time.perf_counter() - started:.1f} s")
        settings = MonitorSettings(cache_s=0)
        board = board_for(session.runtimes, settings)
        await asyncio.sleep(2)  # visibility catches up with the last starts
        await parts(board, rounds)
        async with serving(create_app(fixed(board), Guard(loopback=True))) as url:
            await asyncio.sleep(2)  # visibility catches up with the last starts
            for path, (median, worst, size) in (await measure(url, rounds)).items():
                unchanged = "304 when unchanged" if size < 0 else "sent again"
                shown = f"median {median:7.1f} ms  max {worst:7.1f} ms  {abs(size):7d} B"
                print(f"{path:45} {shown}  {unchanged}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sagas", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.sagas, arguments.rounds))
