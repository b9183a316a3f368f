"""The bare-NATS floor: the same four-hop event chain through JetStream, no-op handlers, no DB.

What the choreography could cost at best on this machine: each saga is one event published
into a file-backed stream and passed on by four durable pull consumers (fetch a batch, publish
the next event and wait for its stream ack, then ack), exactly the transport the participants
use, without stores, outbox, inbox or spans. The harness divides the variant's throughput by
this one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

FLOOR_STREAM = "SAGA_FLOOR"
HOPS = 4


async def run_floor(
    nc_or_js: NatsClient | JetStreamContext, n: int, concurrency: int
) -> list[float]:
    """Run ``n`` chains, ``concurrency`` at a time; returns each chain's latency in seconds."""
    js = nc_or_js if isinstance(nc_or_js, JetStreamContext) else nc_or_js.jetstream()
    run = uuid.uuid4().hex[:8]
    await _ensure_stream(js)
    finished: dict[str, asyncio.Future[float]] = {}
    subs = [await _consumer(js, run, k) for k in range(1, HOPS + 1)]
    hops = [asyncio.create_task(_hop(js, sub, run, k, finished)) for k, sub in enumerate(subs, 1)]
    try:
        return await _drive(js, run, n, concurrency, finished)
    finally:
        for task in hops:
            task.cancel()
        await asyncio.gather(*hops, return_exceptions=True)
        for k in range(1, HOPS + 1):
            with contextlib.suppress(NatsError):
                await js.delete_consumer(FLOOR_STREAM, f"floor-{run}-{k}")


async def _ensure_stream(js: JetStreamContext) -> None:
    try:
        await js.stream_info(FLOOR_STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=FLOOR_STREAM,
                subjects=["floor.>"],
                storage=StorageType.FILE,
                max_age=600,
            )
        )


async def _drive(
    js: JetStreamContext,
    run: str,
    n: int,
    concurrency: int,
    finished: dict[str, asyncio.Future[float]],
) -> list[float]:
    gate = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> float:
        async with gate:
            key = f"s{i}"
            done: asyncio.Future[float] = loop.create_future()
            finished[key] = done
            start = time.perf_counter()
            await js.publish(f"floor.{run}.e0.{key}", b"{}", headers={"Nats-Msg-Id": f"{run}{key}"})
            end: float = await done
            del finished[key]
            return end - start

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _consumer(js: JetStreamContext, run: str, k: int) -> JetStreamContext.PullSubscription:
    """Hop k's durable, created before anything is published (it starts at new messages)."""
    durable = f"floor-{run}-{k}"
    await js.add_consumer(
        FLOOR_STREAM,
        config=ConsumerConfig(
            durable_name=durable,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_deliver=10,
            max_ack_pending=10_000,
            filter_subject=f"floor.{run}.e{k - 1}.*",
        ),
    )
    return await js.pull_subscribe_bind(durable=durable, stream=FLOOR_STREAM)


async def _hop(
    js: JetStreamContext,
    sub: JetStreamContext.PullSubscription,
    run: str,
    k: int,
    finished: dict[str, asyncio.Future[float]],
) -> None:
    """Hop k consumes event k-1 and publishes event k; the last hop ends the chain."""
    while True:
        try:
            msgs = await sub.fetch(256, timeout=1)
        except TimeoutError:
            continue
        keys = [msg.subject.rsplit(".", 1)[-1] for msg in msgs]
        if k < HOPS:
            acks = [
                await js.publish_async(
                    f"floor.{run}.e{k}.{key}", msg.data, headers={"Nats-Msg-Id": f"{run}{k}{key}"}
                )
                for msg, key in zip(msgs, keys, strict=True)
            ]
            await asyncio.gather(*acks)
        for msg in msgs:
            await msg.ack()
        if k == HOPS:
            now = time.perf_counter()
            for key in keys:
                future = finished.get(key)
                if future is not None and not future.done():
                    future.set_result(now)
