"""The durable outbox: every outbound call (webhook POST, e-mail, Kakao callback, alert) is a row
written in the transaction of the change it reports, then delivered by :class:`Deliverer`.

Delivery is at least once with a stable ``delivery_id``; items with the same ``ordering`` key
(one conversation, per target) go out strictly in order: a later one waits until every earlier
one is delivered or dead. Failures retry with exponential back-off until ``outbox_max_age``
after the event, then the item is ``dead`` (kept, and re-sendable by hand).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased

from annae import errors
from annae.settings import Settings, get_settings
from annae.store.db import aware, iso, rowcount, session_scope, utcnow
from annae.store.tables.channels import OutboxItem

log = logging.getLogger("annae.outbox")
LEASE = timedelta(seconds=120)
KINDS = ("webhook", "email", "kakao", "slack")


class DeliveryError(Exception):
    """A failed attempt; ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ItemNotFound(errors.NotFound, LookupError):
    """No outbox item with that id."""


Sender = Callable[[Session, OutboxItem], int | None]


def enqueue(
    session: Session,
    kind: str,
    event: str,
    payload: dict,
    *,
    target_id: int | None = None,
    ordering: str | None = None,
    not_before: datetime | None = None,
) -> OutboxItem:
    """Add an item in the caller's transaction (delivered only once that commits)."""
    now = utcnow()
    item = OutboxItem(
        delivery_id=uuid.uuid4().hex,
        kind=kind,
        target_id=target_id,
        event=event,
        ordering=ordering,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=not_before or now,
        created_at=now,
    )
    session.add(item)
    return item


def backoff(attempts: int, settings: Settings) -> float:
    """Seconds before try ``attempts + 1``: base, 2×base, 4×base… capped."""
    return min(settings.outbox_backoff * 2 ** max(attempts - 1, 0), settings.outbox_backoff_cap)


def due(session: Session, limit: int = 50) -> list[OutboxItem]:
    """Pending items whose time has come, not leased, and first in their ordering key."""
    now = utcnow()
    earlier = aliased(OutboxItem)
    blocked = exists(
        select(earlier.id).where(
            earlier.status == "pending",
            earlier.kind == OutboxItem.kind,
            earlier.ordering == OutboxItem.ordering,
            or_(
                earlier.target_id == OutboxItem.target_id,
                and_(earlier.target_id.is_(None), OutboxItem.target_id.is_(None)),
            ),
            earlier.id < OutboxItem.id,
        )
    )
    stmt = (
        select(OutboxItem)
        .where(
            OutboxItem.status == "pending",
            OutboxItem.next_attempt_at <= now,
            or_(OutboxItem.locked_until.is_(None), OutboxItem.locked_until < now),
            ~blocked,
        )
        .order_by(OutboxItem.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def claim(session: Session, item: OutboxItem) -> bool:
    """Lease ``item`` for this process (False when another process got it first)."""
    now = utcnow()
    result = session.execute(
        update(OutboxItem)
        .where(
            OutboxItem.id == item.id,
            OutboxItem.status == "pending",
            or_(OutboxItem.locked_until.is_(None), OutboxItem.locked_until < now),
        )
        .values(locked_until=now + LEASE)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def finish(
    session: Session,
    item_id: int,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    settings: Settings,
) -> str:
    """Record an attempt's result; returns the item's new status."""
    item = session.get(OutboxItem, item_id)
    assert item is not None  # claimed by this process; nothing deletes outbox items
    now = utcnow()
    item.attempts += 1
    item.last_status = status
    item.locked_until = None
    if ok:
        item.status, item.delivered_at, item.last_error = "delivered", now, None
        return item.status
    item.last_error = (error or "failed")[:2000]
    wait = backoff(item.attempts, settings)
    if (
        now + timedelta(seconds=wait) - aware(item.created_at)
    ).total_seconds() > settings.outbox_max_age:
        item.status = "dead"
        log.warning(
            "outbox item %s (%s %s) is dead after %d tries: %s",
            item.delivery_id,
            item.kind,
            item.event,
            item.attempts,
            item.last_error,
        )
    else:
        item.next_attempt_at = now + timedelta(seconds=wait)
    return item.status


def resend(session: Session, item_id: int) -> OutboxItem:
    """Put a delivered or dead item back in the queue (same delivery id), due now."""
    item = session.get(OutboxItem, item_id)
    if item is None:
        raise ItemNotFound(f"no outbox item {item_id}")
    item.status, item.next_attempt_at, item.locked_until = "pending", utcnow(), None
    item.created_at = utcnow()  # a fresh 24 h of retries
    return item


def item_dict(item: OutboxItem, *, with_payload: bool = False) -> dict:
    out = {
        "id": item.id,
        "delivery_id": item.delivery_id,
        "kind": item.kind,
        "target_id": item.target_id,
        "event": item.event,
        "status": item.status,
        "attempts": item.attempts,
        "last_status": item.last_status,
        "last_error": item.last_error,
        "next_attempt_at": iso(item.next_attempt_at),
        "created_at": iso(item.created_at),
        "delivered_at": iso(item.delivered_at),
    }
    if with_payload:
        out["payload"] = item.payload
    return out


def log_items(
    session: Session,
    *,
    kind: str | None = None,
    target_id: int | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict]:
    """The delivery log, newest first."""
    stmt = select(OutboxItem).order_by(OutboxItem.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(OutboxItem.kind == kind)
    if target_id is not None:
        stmt = stmt.where(OutboxItem.target_id == target_id)
    if status:
        stmt = stmt.where(OutboxItem.status == status)
    return [item_dict(i) for i in session.scalars(stmt)]


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(OutboxItem.status, func.count()).group_by(OutboxItem.status))
    return {status: n for status, n in rows}


def wake(svc) -> None:
    """Have this process's :class:`Deliverer` (if it runs one) scan now rather than at its next
    poll."""
    deliverer = svc.extra.get("deliverer")
    if deliverer is not None:
        deliverer.wake.set()


class Deliverer:
    """Delivers due outbox items with one sender per kind; ``run_once`` is one scan."""

    def __init__(
        self,
        db: Engine,
        senders: dict[str, Sender] | None = None,
        settings: Settings | None = None,
    ) -> None:
        from annae.channels import senders as default_senders

        self.db = db
        self.settings = settings or get_settings()
        self.senders = senders or default_senders.make(self.settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.wake = threading.Event()

    def run_once(self, limit: int = 50) -> int:
        """Claim and deliver what is due now; returns how many attempts were made."""
        with session_scope(self.db) as session:
            mine = [i for i in due(session, limit) if claim(session, i)]
            session.expunge_all()
        for item in mine:
            ok, status, error = self._attempt(item)
            with session_scope(self.db) as session:
                finish(session, item.id, ok=ok, status=status, error=error, settings=self.settings)
        return len(mine)

    def _attempt(self, item: OutboxItem) -> tuple[bool, int | None, str | None]:
        sender = self.senders.get(item.kind)
        if sender is None:
            return False, None, f"no sender for kind {item.kind!r}"
        try:
            with session_scope(self.db) as session:
                status = sender(session, item)
            return True, status, None
        except DeliveryError as exc:
            return False, exc.status, str(exc)
        except Exception as exc:  # one broken target must not stop the others
            log.warning("outbox %s %s: %s", item.kind, item.delivery_id, exc)
            return False, None, f"{type(exc).__name__}: {exc}"

    def drain(self, rounds: int = 100) -> int:
        """Scan until nothing is due (tests and ``annae channel deliver``)."""
        total = 0
        for _ in range(rounds):
            n = self.run_once()
            total += n
            if n == 0:
                break
        return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="annae-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.run_once()
            except Exception:
                log.exception("outbox scan failed")
                n = 0
            if n == 0:
                self.wake.wait(self.settings.outbox_poll)
                self.wake.clear()
