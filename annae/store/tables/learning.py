"""Learning tables: agents' labels of handed-off conversations and customers' ratings of answers.

Rows point at conversations and messages by id only (no foreign keys and no copied text), so that
erasing a customer's conversations leaves nothing personal here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from annae.store.db import Base, utcnow


class ConversationLabel(Base):
    """What an agent said a handed-off conversation was about (one label per conversation)."""

    __tablename__ = "learning_labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    message_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    kind: Mapped[str] = mapped_column(String(16))  # "entry" | "new_entry" | "not_faq"
    entry_id: Mapped[int | None] = mapped_column(Integer, index=True, nullable=True)
    example_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    bot_entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    agent: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerRating(Base):
    """A customer's rating of one bot answer (one per answer; the latest wins)."""

    __tablename__ = "learning_ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(32), index=True)
    message_id: Mapped[int] = mapped_column(Integer, unique=True, index=True)
    entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
