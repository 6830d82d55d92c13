"""Live events: publish ``(channel, payload)`` from any thread, subscribe from the event loop.

:class:`LocalBroker` fans out inside one process. :class:`RedisBroker` publishes to Redis pub/sub
(channel ``annae:<channel>``) and every process delivers what it hears to its own subscribers, so a
message posted to one process reaches WebSockets held by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator

log = logging.getLogger("annae.events")
PREFIX = "annae:"


class Subscription:
    """A bounded queue of events for one listener; a listener that falls far behind is dropped."""

    def __init__(self, broker: LocalBroker, channels: tuple[str, ...], maxsize: int = 1000) -> None:
        self.broker = broker
        self.channels = channels
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False

    def _put(self, payload: dict) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:
            self.overflowed = True
            log.warning("dropping a slow subscriber of %s", self.channels)
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.get_nowait()
                self.queue.put_nowait(None)

    async def get(self) -> dict | None:
        """The next event, or None when the subscription was dropped."""
        return await self.queue.get()

    def close(self) -> None:
        self.broker._remove(self)


class LocalBroker:
    """In-process fan-out; ``publish`` is safe to call from worker threads."""

    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        pass

    def subscribe(self, *channels: str) -> Subscription:
        """Register a listener; call from the event loop."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        sub = Subscription(self, channels)
        with self._lock:
            for ch in channels:
                self._subs[ch].add(sub)
        return sub

    @contextlib.asynccontextmanager
    async def listen(self, *channels: str) -> AsyncIterator[Subscription]:
        sub = self.subscribe(*channels)
        try:
            yield sub
        finally:
            sub.close()

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            for ch in sub.channels:
                self._subs[ch].discard(sub)
                if not self._subs[ch]:
                    del self._subs[ch]

    def deliver(self, channel: str, payload: dict) -> None:
        """Hand an event to this process's listeners (from any thread)."""
        with self._lock:
            subs = list(self._subs.get(channel, ()))
        if not subs or self.loop is None:
            return
        for sub in subs:
            self._call(sub._put, payload)

    def _call(self, fn, *args) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            fn(*args)
        elif not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def publish(self, channel: str, payload: dict) -> None:
        self.deliver(channel, payload)

    def publish_many(self, events: list[tuple[str, dict]]) -> None:
        for channel, payload in events:
            self.publish(channel, payload)

    @property
    def kind(self) -> str:
        return "local"


class RedisBroker(LocalBroker):
    """Fan-out across processes through Redis pub/sub (``ANNAE_REDIS_URL``)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self.url = url
        self._sync = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

    @property
    def kind(self) -> str:
        return "redis"

    async def start(self) -> None:
        await super().start()
        self._task = asyncio.create_task(self._listen(), name="annae-redis-events")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), 5)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._sync.close()

    async def _listen(self) -> None:
        import redis.asyncio as aredis

        delay = 0.5
        while True:
            client = aredis.Redis.from_url(self.url)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(PREFIX + "*")
                self._ready.set()
                delay = 0.5
                async for item in pubsub.listen():
                    if item.get("type") != "pmessage":
                        continue
                    channel = item["channel"].decode()[len(PREFIX) :]
                    if channel not in self._subs:  # nobody here listens: skip the JSON parse
                        continue
                    try:
                        payload = json.loads(item["data"])
                    except (ValueError, TypeError):
                        continue
                    self.deliver(channel, payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: retry with back-off
                log.warning("redis events: %s; reconnecting in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def publish(self, channel: str, payload: dict) -> None:
        """Publish through Redis (blocking briefly: call from a worker thread, not the loop)."""
        data = json.dumps(payload, ensure_ascii=False, default=str)
        try:
            self._sync.publish(PREFIX + channel, data)
        except Exception as exc:  # Redis down: at least this process's listeners hear it
            log.warning("redis publish failed (%s); delivering locally only", exc)
            self.deliver(channel, payload)

    def publish_many(self, events: list[tuple[str, dict]]) -> None:
        """Publish several events in one round trip (a Redis pipeline)."""
        if not events:
            return
        try:
            pipe = self._sync.pipeline(transaction=False)
            for channel, payload in events:
                pipe.publish(PREFIX + channel, json.dumps(payload, ensure_ascii=False, default=str))
            pipe.execute()
        except Exception as exc:
            log.warning("redis publish failed (%s); delivering locally only", exc)
            for channel, payload in events:
                self.deliver(channel, payload)

    def ping(self) -> bool:
        try:
            return bool(self._sync.ping())
        except Exception:
            return False


def make_broker(redis_url: str | None) -> LocalBroker:
    return RedisBroker(redis_url) if redis_url else LocalBroker()
