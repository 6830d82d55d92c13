"""The Redis event bus: local delivery without Redis, prompt reconnection and a resync cue.

Runs its own redis-server (tests/private_services.py): the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import json
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


def test_a_turns_events_cross_processes_as_one_message_in_order():
    """publish_many sends a batch as one Redis message named by its channels: another process
    delivers each event to its own listeners in order, and one listening to none of the
    channels skips the message without parsing it."""
    redis = PrivateRedis()
    redis.start()

    async def scenario() -> tuple[list, list, int]:
        a, b, c = (RedisBroker(redis.url) for _ in range(3))  # three processes' brokers
        for broker in (a, b, c):
            await broker.start()
        conv, agents = b.subscribe("conv:7"), b.subscribe("agents")
        other = c.subscribe("conv:8")
        parsed = []
        real = json.loads
        try:
            json.loads = lambda data, *args, **kw: parsed.append(data) or real(data, *args, **kw)
            heard = []
            raw = await asyncio.to_thread(lambda: a._sync.pubsub(ignore_subscribe_messages=True))
            raw.psubscribe("annae:*")
            events = [
                ("conv:7", {"event": "message", "n": 1}),
                ("agents", {"event": "message", "n": 2}),
                ("conv:7", {"event": "reply", "n": 3}),
            ]
            await asyncio.to_thread(a.publish_many, events)
            got = [(await _next(conv, 5))["n"], (await _next(conv, 5))["n"]]
            got_agents = [(await _next(agents, 5))["n"]]
            await asyncio.sleep(0.3)
            for _ in range(5):
                message = raw.get_message(timeout=0.2)
                if message:
                    heard.append(message["channel"].decode())
            raw.close()
            assert other.queue.empty()
            return got + got_agents, heard, len(parsed)
        finally:
            json.loads = real
            for sub in (conv, agents, other):
                sub.close()
            for broker in (a, b, c):
                await broker.stop()

    try:
        with ThreadPoolExecutor(1) as pool:
            order, heard, parses = pool.submit(asyncio.run, scenario()).result()
    finally:
        redis.stop()
    assert order == [1, 3, 2]
    assert heard == ["annae:conv:7|agents"]  # one Redis message for the three events
    assert parses == 1  # b parsed it once; c (listening to conv:8) and a (its own) did not
