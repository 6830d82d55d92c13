"""Configured channels: create one (its secret is returned once), list, disable, authenticate."""

from __future__ import annotations

import hmac
import re
import time

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from annae.store.db import session_scope, utcnow
from annae.store.tables.channels import Channel
from annae.store.tokens import hash_secret, new_secret

KINDS = ("kakao", "email")
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,60}$")
_AUTH_CACHE: dict[tuple[str, str], tuple[float, int, str, dict]] = {}
AUTH_CACHE_SECONDS = 5.0


class ChannelError(ValueError):
    """A channel that cannot be created or found."""


def create(
    session: Session, kind: str, name: str, config: dict | None = None
) -> tuple[Channel, str]:
    """A new channel and its secret (stored hashed; shown once)."""
    if kind not in KINDS:
        raise ChannelError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not _NAME.match(name or ""):
        raise ChannelError("name must be 1-60 letters, digits or . _ -")
    if session.scalar(select(Channel.id).where(Channel.name == name)) is not None:
        raise ChannelError(f"a channel named {name!r} exists already")
    secret = new_secret()
    ch = Channel(
        kind=kind,
        name=name,
        secret_hash=hash_secret(secret),
        config=config or {},
        active=True,
        created_at=utcnow(),
    )
    session.add(ch)
    session.flush()
    return ch, secret


def by_name(session: Session, name: str) -> Channel:
    ch = session.scalar(select(Channel).where(Channel.name == name))
    if ch is None:
        raise ChannelError(f"no channel named {name!r}")
    return ch


def set_active(session: Session, name: str, active: bool) -> None:
    by_name(session, name).active = active
    _AUTH_CACHE.clear()


def list_all(session: Session) -> list[Channel]:
    return list(session.scalars(select(Channel).order_by(Channel.id)))


def cached(db: Engine, kind: str, secret: str | None) -> tuple[int, str, dict] | None:
    """:func:`authenticate` from the cache only (no database: safe on the event loop)."""
    if not secret or len(secret) > 200:
        return None
    hit = _AUTH_CACHE.get((kind, hash_secret(secret)))
    if hit is not None and time.monotonic() - hit[0] < AUTH_CACHE_SECONDS:
        return hit[1], hit[2], hit[3]
    return None


def authenticate(db: Engine, kind: str, secret: str | None) -> tuple[int, str, dict] | None:
    """``(id, name, config)`` of the active ``kind`` channel whose secret this is, else None.

    Answers are cached for a few seconds (a disabled channel stops within that time)."""
    if not secret or len(secret) > 200:
        return None
    found = cached(db, kind, secret)
    if found is not None:
        return found
    hashed = hash_secret(secret)
    with session_scope(db) as session:
        ch = session.scalar(
            select(Channel).where(Channel.secret_hash == hashed, Channel.kind == kind)
        )
        if ch is None or not ch.active or not hmac.compare_digest(ch.secret_hash, hashed):
            return None
        found = (ch.id, ch.name, dict(ch.config or {}))
    _AUTH_CACHE[(kind, hashed)] = (time.monotonic(), *found)
    return found
