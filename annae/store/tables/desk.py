"""Desk tables: teams and their members, agents' presence and capacity, routing of conversations
to teams, private notes, saved replies, customers' satisfaction ratings (CSAT) and the openings of
teams' hours that were announced to the agents."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from annae.store.db import Base, utcnow


class Team(Base):
    """A team (배송, 결제, VIP …): what it handles (entry tags, languages), its hours and targets."""

    __tablename__ = "desk_teams"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, index=True)
    tags: Mapped[list] = mapped_column(JSON, default=list)
    languages: Mapped[list] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Seoul")
    # {"mon": [["09:00", "18:00"]], ...}; empty: always open
    hours: Mapped[dict] = mapped_column(JSON, default=dict)
    holidays: Mapped[list] = mapped_column(JSON, default=list)  # ["2026-01-01", ...]
    first_response_target_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    resolve_target_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TeamMember(Base):
    __tablename__ = "desk_team_members"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("desk_teams.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AgentStatus(Base):
    """An agent's presence (online / away / offline), capacity and last assignment (round-robin)."""

    __tablename__ = "desk_agents"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    last_assigned_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Routing(Base):
    """Which team a conversation is with (set at hand-off, changed by a transfer)."""

    __tablename__ = "desk_routing"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk_teams.id", ondelete="SET NULL"), index=True, nullable=True
    )
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Note(Base):
    """A private note on a conversation: agents only, never the customer nor a channel."""

    __tablename__ = "desk_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list] = mapped_column(JSON, default=list)  # user ids
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SavedReply(Base):
    """A canned answer with a ``/shortcut``: a team's (``team_id``), personal (``owner_id``) or
    everyone's (both NULL), with Korean and English texts."""

    __tablename__ = "desk_saved_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(64), index=True)
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk_teams.id", ondelete="CASCADE"), nullable=True
    )
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=True
    )
    text_ko: Mapped[str] = mapped_column(Text, default="")
    text_en: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Csat(Base):
    """A customer's satisfaction rating (1-5) of one resolution, tied to who resolved it."""

    __tablename__ = "desk_csat"
    __table_args__ = (UniqueConstraint("conversation_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    resolved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )  # NULL: the bot resolved it
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("desk_teams.id", ondelete="SET NULL"), nullable=True
    )
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Opening(Base):
    """A start of a team's hours that found customers queued and was announced (once: the first
    process to insert the row sends the alert)."""

    __tablename__ = "desk_openings"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("desk_teams.id", ondelete="CASCADE"), primary_key=True
    )
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    waiting: Mapped[int] = mapped_column(Integer)
    assigned: Mapped[int] = mapped_column(Integer)
    alerted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
