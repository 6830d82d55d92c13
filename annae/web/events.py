"""Live events: publish ``(channel, payload)`` from any thread, subscribe from the event loop.

:class:`LocalBroker` fans out inside one process. :class:`RedisBroker` publishes to Redis pub/sub
(channel ``annae:<channel>|<channel>…``, one message per batch) and every process delivers what it hears to its own subscribers, so a
message posted to one process reaches WebSockets held by another.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

log = logging.getLogger("annae.events")
PREFIX = "annae:"
SEPARATOR = "|"  # between the channels of one published batch (no channel name holds it)


class Subscription:
    """A bounded queue of events for one listener; a listener that falls far behind is dropped."""

    def __init__(self, broker: LocalBroker, channels: tuple[str, ...], maxsize: int = 1000) -> None:
        self.broker = broker
        self.channels = channels
        self.queue: asyncio.Queue[dict | None] = asyncio.Queue(maxsize=maxsize)
        self.overflowed = False
        #: the largest message id handed to this listener, and that id when the event bus last
        #: lost Redis: a ``resync`` tells the client to refetch after it (later ids may be gaps)
        self.last_message_id = 0
        self.intact_until: int | None = None

    def _put(self, payload: dict) -> None:
        if self.overflowed:
            return
        if payload.get("event") == "resync":
            payload = {**payload, "after": self.intact_until or 0}
            self.intact_until = None
        else:
            message_id = (payload.get("message") or {}).get("id")
            if isinstance(message_id, int) and message_id > self.last_message_id:
                self.last_message_id = message_id
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

    kind = "local"

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

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            fn(*args)
            return
        # callers have a loop: deliver() checks, a subscriber exists only once subscribe() set it
        assert self.loop is not None
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(fn, *args)

    def publish(self, channel: str, payload: dict) -> None:
        self.deliver(channel, payload)

    def publish_many(self, events: list[tuple[str, dict]]) -> None:
        for channel, payload in events:
            self.publish(channel, payload)


class RedisBroker(LocalBroker):
    """Fan-out across processes through Redis pub/sub (``ANNAE_REDIS_URL``).

    An event reaches this process's own subscribers directly, whatever Redis is doing; Redis
    carries it to the other processes (each skips what it published itself). When the listener
    loses Redis it reconnects at once, then with a short back-off (at most
    :data:`MAX_BACKOFF_S`), and on reconnecting sends every local subscriber a ``resync`` event:
    events published elsewhere meanwhile may be missed, so clients refetch (``?after=``)."""

    MAX_BACKOFF_S = 1.0
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis

        self.url = url
        self.origin = uuid.uuid4().hex
        self._sync = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._task: asyncio.Task | None = None
        self._ready = asyncio.Event()

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

    def _lost(self) -> None:
        """Remember, for each subscriber, the last message it got while the bus was whole."""
        with self._lock:
            subs = {sub for group in self._subs.values() for sub in group}
        for sub in subs:
            if sub.intact_until is None:
                sub.intact_until = sub.last_message_id

    def resync(self, reason: str) -> None:
        """Tell every subscriber of this process to refetch what it may have missed."""
        with self._lock:
            subs = {sub for group in self._subs.values() for sub in group}
        for sub in subs:
            self._call(sub._put, {"event": "resync", "reason": reason})

    async def _listen(self) -> None:
        import redis.asyncio as aredis

        delay, lost = 0.0, False
        while True:
            client = aredis.Redis.from_url(self.url, socket_connect_timeout=2)
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                await pubsub.psubscribe(PREFIX + "*")
                self._ready.set()
                if lost:
                    log.warning("redis events: reconnected; asking sockets to resync")
                    self.resync("reconnected")
                delay, lost = 0.0, False
                async for item in pubsub.listen():
                    if item.get("type") != "pmessage":
                        continue
                    channels = item["channel"].decode()[len(PREFIX) :].split(SEPARATOR)
                    if not any(c in self._subs for c in channels):  # nobody here listens:
                        continue  # skip the JSON parse
                    try:
                        envelope = json.loads(item["data"])
                        origin, events = envelope["o"], envelope["e"]
                    except (ValueError, TypeError, KeyError):
                        continue
                    if origin == self.origin:  # our own events were delivered at publish time
                        continue
                    for channel, payload in events:
                        self.deliver(channel, payload)
                raise ConnectionError("the subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: retry at once, then with back-off
                if not lost:
                    log.warning("redis events: %s; reconnecting", exc)
                    self._lost()  # on the loop: before any later local delivery
                lost = True
                await asyncio.sleep(delay)
                delay = min(max(delay * 2, 0.05), self.MAX_BACKOFF_S)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _envelope(self, events: list[tuple[str, dict]]) -> str:
        return json.dumps({"o": self.origin, "e": events}, ensure_ascii=False, default=str)

    def publish(self, channel: str, payload: dict) -> None:
        """Publish through Redis and deliver here (blocking briefly: call from a worker thread)."""
        self.publish_many([(channel, payload)])

    def publish_many(self, events: list[tuple[str, dict]]) -> None:
        """Publish several events as one Redis message, then deliver them here.

        The message's channel names every channel of the batch (``annae:conv:…|agents``), so a
        process where nobody listens to any of them skips it unparsed; one message instead of one
        per event is one parse in each process instead of three for a customer turn.

        This process's sockets get the events whatever Redis does: a failed publish (Redis down:
        refused at once; hung: after ``socket_timeout``) only means other processes miss them, and
        they resync when their listener is back. A failed publish also marks, before the local
        delivery, what this process's sockets had while the bus was whole."""
        if not events:
            return
        try:
            names = SEPARATOR.join(dict.fromkeys(channel for channel, _ in events))
            self._sync.publish(PREFIX + names, self._envelope(events))
        except Exception as exc:
            log.warning("redis publish failed (%s); delivered in this process only", exc)
            if self.loop is not None:
                self._call(self._lost)
        for channel, payload in events:
            self.deliver(channel, payload)


def make_broker(redis_url: str | None) -> LocalBroker:
    return RedisBroker(redis_url) if redis_url else LocalBroker()
