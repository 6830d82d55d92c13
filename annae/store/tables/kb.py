"""Knowledge-base tables: entries, their example questions, and revisions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from annae.store.db import Base, utcnow


class KBEntry(Base):
    """One FAQ entry: a question (title) and its answer."""

    __tablename__ = "kb_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True, index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    tags: Mapped[list] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )

    examples: Mapped[list[KBExample]] = relationship(
        back_populates="entry", cascade="all, delete-orphan", order_by="KBExample.id"
    )


class KBExample(Base):
    """An example question for an entry; ``entry_id`` is NULL for out-of-scope (``oos``) examples."""

    __tablename__ = "kb_examples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("kb_entries.id", ondelete="CASCADE"), index=True, nullable=True
    )
    text: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    source: Mapped[str] = mapped_column(String(500), default="manual")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    entry: Mapped[KBEntry | None] = relationship(back_populates="examples")


class KBRevision(Base):
    """A numbered change to the knowledge base; models record the revision they learnt from."""

    __tablename__ = "kb_revisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    author: Mapped[str] = mapped_column(String(200), default="system")
    summary: Mapped[str] = mapped_column(Text, default="")
