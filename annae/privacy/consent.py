"""Consent per customer and purpose: grant, withdraw, check, history.

Consent is a history of events; the latest event (by time, then insertion order) for a
customer and purpose is in force, so a withdrawal takes effect as soon as it is committed.
No event means no consent.

>>> grant(session, "cust-42", "training", text_version="privacy-2026-11", source="widget")
>>> has_consent(session, "cust-42", "training")
True
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal, overload

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from annae import errors
from annae.store.db import aware, rowcount, utcnow
from annae.store.tables.privacy import ConsentEvent

PURPOSES: tuple[str, ...] = ("service", "training", "marketing")


class ConsentError(errors.AnnaeError, ValueError):
    """A bad customer id, purpose, source or text version."""

    status, code = 422, "bad_request"


@overload
def _text(value: object, name: str, limit: int, *, required: Literal[True] = ...) -> str: ...
@overload
def _text(value: object, name: str, limit: int, *, required: bool) -> str | None: ...


def _text(value: object, name: str, limit: int, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConsentError(f"{name} must be a non-empty string, got {value!r}")
    value = value.strip()
    if len(value) > limit:
        raise ConsentError(f"{name} is longer than {limit} characters")
    return value


def _purpose(purpose: object) -> str:
    if not isinstance(purpose, str) or purpose.strip().lower() not in PURPOSES:
        raise ConsentError(f"unknown purpose {purpose!r}; one of {', '.join(PURPOSES)}")
    return purpose.strip().lower()


def _when(at: datetime | None) -> datetime:
    now = utcnow()
    if at is None:
        return now
    if not isinstance(at, datetime):
        raise ConsentError(f"at must be a datetime, got {type(at).__name__}")
    at = aware(at)
    if at > now + timedelta(minutes=5):
        raise ConsentError(f"at {at.isoformat()} lies in the future")
    return at


def _record(
    session: Session,
    customer_id: str,
    purpose: str,
    granted: bool,
    *,
    source: str,
    text_version: str | None,
    at: datetime | None,
) -> ConsentEvent:
    ev = ConsentEvent(
        customer_id=_text(customer_id, "customer_id", 200),
        purpose=_purpose(purpose),
        granted=granted,
        at=_when(at),
        source=_text(source, "source", 100),
        text_version=_text(text_version, "text_version", 100, required=granted),
    )
    session.add(ev)
    session.flush()
    return ev


def grant(
    session: Session,
    customer_id: str,
    purpose: str,
    *,
    text_version: str,
    source: str = "api",
    at: datetime | None = None,
) -> ConsentEvent:
    """Record that ``customer_id`` agreed to ``purpose`` under the notice ``text_version``."""
    return _record(
        session, customer_id, purpose, True, source=source, text_version=text_version, at=at
    )


def withdraw(
    session: Session,
    customer_id: str,
    purpose: str,
    *,
    source: str = "api",
    text_version: str | None = None,
    at: datetime | None = None,
) -> ConsentEvent:
    """Record that ``customer_id`` withdrew consent to ``purpose`` (in force at once)."""
    return _record(
        session, customer_id, purpose, False, source=source, text_version=text_version, at=at
    )


def _latest(session: Session, customer_id: str, purpose: str) -> ConsentEvent | None:
    stmt = (
        select(ConsentEvent)
        .where(ConsentEvent.customer_id == customer_id, ConsentEvent.purpose == purpose)
        .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def has_consent(session: Session, customer_id: str, purpose: str) -> bool:
    """Whether the latest event for this customer and purpose is a grant (False if none)."""
    customer_id = _text(customer_id, "customer_id", 200)
    ev = _latest(session, customer_id, _purpose(purpose))
    return bool(ev and ev.granted)


def status(session: Session, customer_id: str) -> dict[str, bool]:
    """Every purpose and whether it is consented to now."""
    customer_id = _text(customer_id, "customer_id", 200)
    return {p: bool((ev := _latest(session, customer_id, p)) and ev.granted) for p in PURPOSES}


def history(session: Session, customer_id: str, purpose: str | None = None) -> list[ConsentEvent]:
    """The customer's consent events, oldest first (optionally for one purpose)."""
    stmt = select(ConsentEvent).where(
        ConsentEvent.customer_id == _text(customer_id, "customer_id", 200)
    )
    if purpose is not None:
        stmt = stmt.where(ConsentEvent.purpose == _purpose(purpose))
    return list(session.scalars(stmt.order_by(ConsentEvent.at, ConsentEvent.id)))


def consenting(
    session: Session, purpose: str, customer_ids: Iterable[str] | None = None
) -> set[str]:
    """The customers whose consent to ``purpose`` is in force (among ``customer_ids`` if given).

    For filters such as "only conversations of customers with ``training`` consent".
    """
    stmt = select(ConsentEvent).where(ConsentEvent.purpose == _purpose(purpose))
    if customer_ids is not None:
        ids = list(dict.fromkeys(customer_ids))
        if not ids:
            return set()
        stmt = stmt.where(ConsentEvent.customer_id.in_(ids))
    latest: dict[str, bool] = {}
    for ev in session.scalars(stmt.order_by(ConsentEvent.at, ConsentEvent.id)):
        latest[ev.customer_id] = ev.granted
    return {cid for cid, granted in latest.items() if granted}


def to_dict(ev: ConsentEvent) -> dict:
    """A JSON-ready view of one event (for exports and the CLI)."""
    return {
        "customer_id": ev.customer_id,
        "purpose": ev.purpose,
        "granted": ev.granted,
        "at": aware(ev.at).isoformat(),
        "source": ev.source,
        "text_version": ev.text_version,
    }


def erase(session: Session, customer_id: str) -> int:
    """Delete every consent event of the customer (for erasure); returns how many."""
    customer_id = _text(customer_id, "customer_id", 200)
    result = session.execute(delete(ConsentEvent).where(ConsentEvent.customer_id == customer_id))
    return rowcount(result)
