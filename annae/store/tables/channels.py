"""Channel tables: Kakao and e-mail channels, who writes through them, outbound webhooks, the
durable outbox every outbound call goes through, and agent-alert throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from annae.store.db import Base, utcnow


class Channel(Base):
    """A configured channel (``kakao`` or ``email``); its secret is stored as a SHA-256 hash."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    config: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelContact(Base):
    """One outside person (a Kakao user id) or e-mail thread (its first Message-ID) and the
    current conversation; ``meta`` holds an e-mail thread's address and subject.

    ``delivered_upto`` is the last message id the person has been sent (agent replies after it
    still have to reach them); ``callback_url`` a Kakao callback that may still be used until
    ``callback_expires_at``.
    """

    __tablename__ = "channel_contacts"
    __table_args__ = (UniqueConstraint("channel_id", "external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(320))
    conversation_id: Mapped[str | None] = mapped_column(String(32), index=True, nullable=True)
    delivered_upto: Mapped[int] = mapped_column(Integer, default=0)
    callback_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    callback_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    meta: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ChannelRef(Base):
    """A reference that points at a conversation: an e-mail Message-ID seen or sent."""

    __tablename__ = "channel_refs"
    __table_args__ = (UniqueConstraint("channel_id", "ref"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id", ondelete="CASCADE"))
    ref: Mapped[str] = mapped_column(String(998))
    conversation_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Webhook(Base):
    """An admin's outbound webhook: the URL, the events it wants, the signing secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    events: Mapped[list] = mapped_column(JSON)
    # the HMAC key itself (a hash could not sign); only admins and the delivering process read it
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxItem(Base):
    """One outbound call to make: a webhook POST, an e-mail, a Kakao callback, an agent alert.

    Written in the same transaction as the change it reports, so a crash loses nothing; the
    delivering process claims items (``locked_until``) and keeps per-``ordering`` order.
    """

    __tablename__ = "channel_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    target_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    ordering: Mapped[str | None] = mapped_column(String(100), index=True, nullable=True)
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AgentAlert(Base):
    """When agents were last alerted about a conversation (at most once per N minutes)."""

    __tablename__ = "agent_alerts"

    conversation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
