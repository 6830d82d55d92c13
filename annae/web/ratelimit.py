"""Token-bucket rate limits, in process or shared through Redis.

Limits come from the settings (``ANNAE_RATE_CONVERSATION``, ``ANNAE_RATE_IP``,
``ANNAE_RATE_LOGIN``: :class:`annae.settings.RateSection`) as ``"burst/seconds"`` (a bucket of
``burst`` tokens refilled over ``seconds``); ``0`` turns one off.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

log = logging.getLogger("annae.ratelimit")

KINDS = ("conversation", "ip", "login")


@dataclass(frozen=True)
class Rate:
    burst: float
    per_seconds: float

    @property
    def refill(self) -> float:
        """Tokens per second."""
        return self.burst / self.per_seconds

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        text = (text or "").strip()
        if text in ("", "0", "off", "none"):
            return None
        try:
            burst, _, seconds = text.partition("/")
            rate = cls(float(burst), float(seconds or 1))
        except ValueError as exc:
            raise ValueError(f"rate limit {text!r} is not 'burst/seconds'") from exc
        if rate.burst <= 0 or rate.per_seconds <= 0:
            return None
        return rate


def rates(settings) -> dict[str, Rate | None]:
    """The limits of ``settings`` (:class:`annae.settings.RateSection`) by kind."""
    return {kind: Rate.parse(getattr(settings, f"rate_{kind}")) for kind in KINDS}


class LocalLimiter:
    """Buckets in this process's memory (with N workers the effective limit is up to N times higher)."""

    def __init__(self, rates: dict[str, Rate | None], max_keys: int = 100_000) -> None:
        self.rates = rates
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self.max_keys = max_keys

    def blocks(self, kind: str) -> bool:
        """True when ``hit(kind, …)`` does network I/O (call it from a worker thread then)."""
        return False

    def hit(self, kind: str, key: str) -> float:
        """Take one token; returns 0 when allowed, else the seconds to wait."""
        rate = self.rates.get(kind)
        if rate is None:
            return 0.0
        now = time.monotonic()
        name = f"{kind}:{key}"
        with self._lock:
            tokens, stamp = self._buckets.get(name, (rate.burst, now))
            tokens = min(rate.burst, tokens + (now - stamp) * rate.refill)
            if tokens >= 1:
                self._buckets[name] = (tokens - 1, now)
                if len(self._buckets) > self.max_keys:
                    self._buckets.clear()  # crude memory bound; full buckets are the default anyway
                return 0.0
            self._buckets[name] = (tokens, now)
            return (1 - tokens) / rate.refill


_LUA = """
local burst = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * refill)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / refill end
redis.call('HSET', KEYS[1], 't', tokens, 's', now)
redis.call('EXPIRE', KEYS[1], math.ceil(burst / refill) + 1)
return tostring(wait)
"""


class RedisLimiter(LocalLimiter):
    """Buckets in Redis, shared by every process (falls back to local buckets if Redis fails)."""

    def __init__(self, rates: dict[str, Rate | None], url: str) -> None:
        super().__init__(rates)
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self._redis.register_script(_LUA)

    def blocks(self, kind: str) -> bool:
        return self.rates.get(kind) is not None

    def hit(self, kind: str, key: str) -> float:
        rate = self.rates.get(kind)
        if rate is None:
            return 0.0
        try:
            wait = self._script(
                keys=[f"annae:rl:{kind}:{key}"], args=[rate.burst, rate.refill, time.time()]
            )
            return float(wait)
        except Exception as exc:
            log.warning("redis rate limit failed (%s); using local buckets", exc)
            return super().hit(kind, key)


def make_limiter(settings) -> LocalLimiter:
    limits = rates(settings)
    return RedisLimiter(limits, settings.redis_url) if settings.redis_url else LocalLimiter(limits)


def retry_after(wait: float) -> int:
    """Seconds for the Retry-After header (at least 1)."""
    return max(1, math.ceil(wait))
