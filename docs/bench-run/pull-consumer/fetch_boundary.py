"""How long a message waits in an idle pull consumer, fetched by nats-py alone or by `Puller`.

One durable on an embedded nats-server; one message at a time, at random moments spread over
one and a half fetch timeouts, so messages keep landing near the moment a fetch expires.
``naive``: ``fetch(128, timeout)`` in a loop (nats-py 2.16 as documented); ``puller``: the
bus's `Puller` (one message while nothing waits, what waits once something does). Prints the
latency from publish (acked) to the fetch returning the message.

    .venv/bin/python docs/bench-run/pull-consumer/fetch_boundary.py naive 0.2 300
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from choreography.broker import NatsBroker
from choreography.bus.pull import FetchPolicy, Puller


async def main(mode: str, timeout: float, count: int) -> None:
    with tempfile.TemporaryDirectory() as state:
        async with NatsBroker(state_dir=Path(state)) as broker:
            nc = await nats.connect(broker.url)
            js = nc.jetstream()
            await js.add_stream(name="PROBE", subjects=["probe.>"])
            config = ConsumerConfig(
                durable_name="probe",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW,
                filter_subjects=["probe.>"],
            )
            await js.add_consumer("PROBE", config)
            sub = await js.pull_subscribe_bind(durable="probe", stream="PROBE")
            policy = FetchPolicy(timeout_s=timeout, waiting_timeout_s=timeout)
            puller = Puller(sub, "probe", policy)
            sent: dict[bytes, float] = {}
            waits: list[float] = []

            async def take() -> list[Msg]:
                if mode == "puller":
                    return await puller.take(128)
                try:
                    return await sub.fetch(128, timeout=timeout)
                except TimeoutError:
                    return []

            async def consume() -> None:
                while len(waits) < count:
                    for msg in await take():
                        waits.append(time.monotonic() - sent[msg.data])
                        await msg.ack()

            consuming = asyncio.create_task(consume())
            for i in range(count):
                await asyncio.sleep(random.uniform(0, timeout * 1.5))
                body = str(i).encode()
                await js.publish("probe.x", body)
                sent[body] = time.monotonic()
            await asyncio.wait_for(consuming, timeout * 4)
            await nc.close()
    waits.sort()
    slow = sum(1 for w in waits if w > 0.010)
    print(
        f"{mode} timeout={timeout}s messages={len(waits)}"
        f" p50={waits[len(waits) // 2] * 1e3:.1f}ms p99={waits[int(len(waits) * 0.99)] * 1e3:.1f}ms"
        f" max={waits[-1] * 1e3:.1f}ms over_10ms={slow}"
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2]), int(sys.argv[3])))
