"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` (the scheme Stripe uses).

Headers: ``X-Annae-Timestamp`` (Unix seconds), ``X-Annae-Signature: v1=<hex>``,
``X-Annae-Delivery`` (stable across retries), ``X-Annae-Event``.
"""

from __future__ import annotations

import hashlib
import hmac
import time


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers(
    secret: str, body: bytes, delivery_id: str, event: str, now: float | None = None
) -> dict:
    ts = int(now if now is not None else time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": "Annae-Webhooks/1",
        "X-Annae-Timestamp": str(ts),
        "X-Annae-Signature": sign(secret, ts, body),
        "X-Annae-Delivery": delivery_id,
        "X-Annae-Event": event,
    }


def verify(
    secret: str,
    body: bytes,
    timestamp: str,
    signature: str,
    *,
    window: int = 300,
    now: float | None = None,
) -> bool:
    """What a receiver does: the signature matches and the timestamp is within ``window`` s."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - ts) > window:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature or "")
