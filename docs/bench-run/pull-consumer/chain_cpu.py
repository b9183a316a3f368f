"""CPU and latency of a chain of four consumers, pulled three ways, on an embedded nats-server.

Each hop takes a message, acks it and publishes the next hop's; one chain at a time, so
every consumer is idle when its message comes. ``old``: the hand-written Puller of main
(514617e, read from /tmp/bench-a/choreography/bus.py, a `git archive` of that commit);
``one``: nats-py's ``fetch(1)`` in a loop; ``puller``: the bus's `Puller`. Prints the chain's
latency and the process's CPU per chain (the four hops, their acks and publishes).

    .venv/bin/python docs/bench-run/pull-consumer/chain_cpu.py puller 400
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from choreography.broker import NatsBroker
from choreography.bus.pull import FetchPolicy, Puller

HOPS = 4
OLD_BUS = Path("/tmp/bench-a/choreography/bus.py")


def old_bus() -> Any:
    spec = importlib.util.spec_from_file_location("old_bus", OLD_BUS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_bus"] = module
    spec.loader.exec_module(module)
    return module


async def taker(mode: str, url: str, hop: int) -> Callable[[int], Awaitable[list[Msg]]]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    durable = f"h{hop}"
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.NEW,
        filter_subjects=[f"p.{hop}.*"],
    )
    await js.add_consumer("P", config)
    if mode == "old":
        puller = old_bus().Puller(nc, "P", durable)
        await puller.start()
        return puller.take  # type: ignore[no-any-return]
    sub = await js.pull_subscribe_bind(durable=durable, stream="P")
    if mode == "puller":
        return Puller(sub, durable, FetchPolicy()).take

    async def one(room: int) -> list[Msg]:
        try:
            return await sub.fetch(1, timeout=2.0)
        except TimeoutError:
            return []

    return one


async def main(mode: str, chains: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        async with NatsBroker(state_dir=Path(state)) as broker:
            nc = await nats.connect(broker.url)
            js = nc.jetstream()
            await js.add_stream(name="P", subjects=["p.>"])
            done: dict[str, asyncio.Future[float]] = {}

            async def hop(index: int) -> None:
                take = await taker(mode, broker.url, index)
                while True:
                    for msg in await take(128):
                        await msg.ack()
                        key = msg.subject.rsplit(".", 1)[1]
                        if index == HOPS - 1:
                            done[key].set_result(time.perf_counter())
                        else:
                            await js.publish(f"p.{index + 1}.{key}", b"x")

            hops = [asyncio.create_task(hop(i)) for i in range(HOPS)]
            await asyncio.sleep(0.5)
            latencies: list[float] = []
            cpu = time.process_time()
            for n in range(chains):
                key = f"k{n}"
                done[key] = asyncio.get_running_loop().create_future()
                started = time.perf_counter()
                await js.publish(f"p.0.{key}", b"x")
                latencies.append(await done[key] - started)
            cpu_ms = (time.process_time() - cpu) / chains * 1e3
            for task in hops:
                task.cancel()
    latencies.sort()
    print(
        f"{mode}: chains={chains} p50={latencies[chains // 2] * 1e3:.2f}ms"
        f" p90={latencies[int(chains * 0.9)] * 1e3:.2f}ms max={latencies[-1] * 1e3:.1f}ms"
        f" cpu/chain={cpu_ms:.2f}ms"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
