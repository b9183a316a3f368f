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
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx

from choreography.events import placed
from choreography.runtime import ChoreographyRuntime
from harness.compare.scenarios import order
from harness.session import VARIANTS, open_session
from monitor.app import create_app, fixed
from monitor.board import Board
from monitor.security import Guard
from monitor.serve import serving
from monitor.settings import MonitorSettings
from monitor.wiring import board_for
from orchestration.messages import SagaInput
from orchestration.runtime import OrchestrationRuntime
from orchestration.visibility import DEFINITION_MEMO, start_attributes
from orchestration.workflows import OrderSagaWorkflow
from shared.contracts import SagaPolicy
from shared.read_model import SagaQuery
from shared.store import Tx

PATHS = (
    "/live/overview",
    "/live/list",
    "/live/list?status=NEEDS_INTERVENTION",
    "/live/list?q=load-4242",
    "/api/sagas?limit=50&after=o1000000000",
)


async def fill_orchestration(runtime: OrchestrationRuntime, count: int) -> None:
    client, definition = runtime.client, runtime.domain.definition
    policy = SagaPolicy()
    gate = asyncio.Semaphore(64)

    async def one(i: int) -> None:
        saga = order(f"load-{i}")
        # The input and listing a started saga has (orchestration/runtime.py, saga_client.start),
        # started plainly: update-with-start would wait for a worker that never comes.
        given = SagaInput(
            saga_id=f"load-{i}-o",
            order=saga,
            policy=policy,
            saga=definition.spec,
            definition=definition.ref,
        )
        async with gate:
            await client.start_workflow(
                OrderSagaWorkflow.run,
                given,
                id=given.saga_id,
                task_queue="nobody-polls-this",
                search_attributes=start_attributes(saga),
                memo={DEFINITION_MEMO: given.definition.model_dump()},
            )

    await asyncio.gather(*(one(i) for i in range(count)))


async def fill_choreography(runtime: ChoreographyRuntime, count: int) -> None:
    tracker = runtime.tracker
    store = tracker.store
    now = time.time()
    ref = runtime.domain.definition.ref
    events = [
        placed(f"load-{i}-c", order(f"load-{i}"), SagaPolicy(), now - i * 0.01, ref)
        for i in range(count)
    ]

    def work(tx: Tx) -> None:
        for event in events:
            tracker.record_start(tx, event, None)
        ended = [(now - i * 0.005, e.saga_id) for i, e in enumerate(events) if i % 10]
        tx.executemany(
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
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "list_sagas (first page)": functools.partial(
                model.list_sagas, SagaQuery(limit=51), now
            ),
            "alerts": functools.partial(model.alerts, now, quiet, warn),
            "interventions": model.interventions,
            "counters": functools.partial(model.counters, now),
        }
        for name, call in calls.items():
            took = []
            for _ in range(rounds):
                started = time.perf_counter()
                await call()
                took.append((time.perf_counter() - started) * 1000)
            print(f"{variant:14} {name:24} median {statistics.median(took):7.1f} ms")


async def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="monitor-load-") as scratch:  # gone when done
        folder = Path(scratch)
        async with open_session(
            list(VARIANTS), folder / "state", folder / "traces.jsonl"
        ) as session:
            await fill_and_time(session.runtimes, count, rounds)


async def fill_and_time(runtimes: Mapping[str, object], count: int, rounds: int) -> None:
    """Fill both read sides with ``count`` sagas, then time the reads ``rounds`` times."""
    orchestration = runtimes["orchestration"]
    choreography = runtimes["choreography"]
    # In-process runtimes: their client and tracker are what this fills.
    assert isinstance(orchestration, OrchestrationRuntime), orchestration
    assert isinstance(choreography, ChoreographyRuntime), choreography
    started = time.perf_counter()
    await fill_orchestration(orchestration, count)
    await fill_choreography(choreography, count)
    print(f"filled {count} sagas per style in {time.perf_counter() - started:.1f} s")
    settings = MonitorSettings(cache_s=0)
    board = board_for(runtimes, settings)
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
