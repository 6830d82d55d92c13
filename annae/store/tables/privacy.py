"""Privacy tables: consent events per customer and purpose, and the append-only audit log.

The audit log refuses updates and deletes twice over: mapper and session events raise
``AuditLogIsAppendOnly`` for ORM changes and bulk statements, and the migration adds a
database trigger (SQLite and PostgreSQL) that aborts UPDATE and DELETE on the table.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, event
from sqlalchemy.orm import Mapped, Session, mapped_column

from annae.store.db import Base, utcnow


class ConsentEvent(Base):
    """A customer granted or withdrew consent to one purpose; the latest event is in force."""

    __tablename__ = "privacy_consent_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(200), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    source: Mapped[str] = mapped_column(String(100), default="api")
    text_version: Mapped[str | None] = mapped_column(String(100), nullable=True)


class AuditEvent(Base):
    """Who did what to which target, and when; ``details`` never holds customer text."""

    __tablename__ = "privacy_audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100), index=True)
    target: Mapped[str] = mapped_column(String(500), default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)


class AuditLogIsAppendOnly(RuntimeError):
    """Raised on any attempt to change or delete an audit event."""


@event.listens_for(AuditEvent, "before_update")
def _no_update(_mapper, _conn, target: AuditEvent) -> None:
    raise AuditLogIsAppendOnly(f"audit event {target.id} cannot be changed: the log is append-only")


@event.listens_for(AuditEvent, "before_delete")
def _no_delete(_mapper, _conn, target: AuditEvent) -> None:
    raise AuditLogIsAppendOnly(f"audit event {target.id} cannot be deleted: the log is append-only")


@event.listens_for(Session, "do_orm_execute")
def _no_bulk_change(state) -> None:
    if (state.is_update or state.is_delete) and any(
        m.class_ is AuditEvent for m in state.all_mappers
    ):
        raise AuditLogIsAppendOnly(
            "bulk UPDATE/DELETE of the audit log is refused: it is append-only"
        )
