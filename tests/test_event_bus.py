"""The Redis event bus: local delivery without Redis, prompt reconnection and a resync cue.

Runs its own redis-server (tests/private_services.py): the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from private_services import PrivateRedis

from annae.web.events import RedisBroker

pytestmark = pytest.mark.redis


async def _next(sub, timeout: float) -> dict | None:
    return await asyncio.wait_for(sub.get(), timeout)


def test_events_survive_a_redis_restart():
    redis = PrivateRedis()
    redis.start()

    async def scenario() -> dict:
        a, b = RedisBroker(redis.url), RedisBroker(redis.url)  # two processes' brokers
        await a.start()
        await b.start()
        sub = a.subscribe("conv:1")
        try:
            # across processes through Redis
            await asyncio.to_thread(
                b.publish, "conv:1", {"event": "message", "n": 1, "message": {"id": 11}}
            )
            assert (await _next(sub, 5))["n"] == 1
            # this process's own event: delivered once (not again when Redis echoes it)
            await asyncio.to_thread(
                a.publish, "conv:1", {"event": "message", "n": 2, "message": {"id": 12}}
            )
            assert (await _next(sub, 5))["n"] == 2
            await asyncio.sleep(0.3)
            assert sub.queue.empty()

            await asyncio.to_thread(redis.stop)
            # Redis down: sockets on the publishing process still hear their events at once
            started = time.perf_counter()
            await asyncio.to_thread(
                a.publish, "conv:1", {"event": "message", "n": 3, "message": {"id": 14}}
            )
            assert (await _next(sub, 2))["n"] == 3
            local_s = time.perf_counter() - started

            await asyncio.sleep(1.5)  # the listener keeps retrying meanwhile
            await asyncio.to_thread(redis.start)
            back = time.perf_counter()
            resync = await _next(sub, 5)
            resync_s = time.perf_counter() - back
            assert resync["event"] == "resync", resync
            # refetch after the last id delivered while the bus was whole (not after the
            # local event delivered during the outage: events before it may be missing)
            assert resync["after"] == 12, resync
            # and events from the other process flow again
            await asyncio.to_thread(b.publish, "conv:1", {"event": "message", "n": 4})
            event = await _next(sub, 5)
            while event["event"] == "resync":  # b's own listener may resync too; not ours
                event = await _next(sub, 5)
            assert event["n"] == 4
            return {"local_s": local_s, "resync_s": resync_s}
        finally:
            sub.close()
            await a.stop()
            await b.stop()

    try:
        # a thread of its own: Playwright's sync API (session-scoped browser) keeps an event loop
        # running in the main thread once a browser test has run
        with ThreadPoolExecutor(1) as pool:
            timings = pool.submit(asyncio.run, scenario()).result()
    finally:
        redis.stop()
    assert timings["local_s"] < 1.0, timings
    assert timings["resync_s"] < 3.0, timings
