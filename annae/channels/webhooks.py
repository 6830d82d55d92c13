"""Outbound webhooks: admins register URLs per event; every event becomes one signed outbox item
per subscribed webhook (ordered per conversation)."""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae import errors
from annae.channels import outbox
from annae.store.db import iso, utcnow
from annae.store.tables.channels import Webhook

EVENTS = (
    "conversation.created",
    "conversation.handoff",
    "message.created",
    "conversation.resolved",
    "rating.created",
    "model.promoted",
)
_CACHE: dict[str, tuple[float, list[tuple[int, frozenset[str]]]]] = {}
CACHE_SECONDS = 2.0


class WebhookError(errors.AnnaeError, ValueError):
    """Bad webhook input (400) or an unknown id (:class:`WebhookNotFound`, 404)."""


class WebhookNotFound(errors.NotFound, WebhookError):
    pass


def _check(url: str, events: list[str]) -> None:
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
        raise WebhookError(f"url must be an http(s) URL, got {url!r}")
    if not events:
        raise WebhookError("give at least one event")
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise WebhookError(f"unknown events {unknown}; known: {', '.join(EVENTS)}")


def create(session: Session, url: str, events: list[str]) -> tuple[Webhook, str]:
    """Register a webhook; the signing secret is returned (show it once)."""
    _check(url, events)
    secret = "whsec_" + secrets.token_urlsafe(32)
    hook = Webhook(
        url=url, events=sorted(set(events)), secret=secret, active=True, created_at=utcnow()
    )
    session.add(hook)
    session.flush()
    _CACHE.clear()
    return hook, secret


def get(session: Session, hook_id: int) -> Webhook:
    hook = session.get(Webhook, hook_id)
    if hook is None:
        raise WebhookNotFound(f"no webhook {hook_id}")
    return hook


def remove(session: Session, hook_id: int) -> None:
    hook = get(session, hook_id)
    hook.active = False
    _CACHE.clear()


def to_dict(hook: Webhook) -> dict:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "active": hook.active,
        "created_at": iso(hook.created_at),
    }


def list_all(session: Session) -> list[dict]:
    return [to_dict(h) for h in session.scalars(select(Webhook).order_by(Webhook.id))]


def _subscribers(session: Session) -> list[tuple[int, frozenset[str]]]:
    """Active webhooks and their events (cached for a moment: read on every customer turn)."""
    key = str(session.get_bind().engine.url)  # an Engine (session_scope's): .engine is itself
    hit = _CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
        return hit[1]
    rows = session.execute(select(Webhook.id, Webhook.events).where(Webhook.active.is_(True)))
    subs = [(hook_id, frozenset(events or ())) for hook_id, events in rows]
    _CACHE[key] = (time.monotonic(), subs)
    return subs


def wanted(session: Session, event: str) -> bool:
    """Whether any active webhook wants ``event`` (cached; lets callers skip building payloads)."""
    return any(event in events for _, events in _subscribers(session))


def emit(session: Session, event: str, data: dict, conversation_id: str | None = None) -> int:
    """One outbox item per webhook that wants ``event``; returns how many."""
    n = 0
    for hook_id, events in _subscribers(session):
        if event in events:
            outbox.enqueue(
                session,
                "webhook",
                event,
                {"created_at": utcnow().isoformat(), "data": data},
                target_id=hook_id,
                ordering=conversation_id,
            )
            n += 1
    return n
