"""Reads of conversations and messages for the agents' desk and its service levels.

Each function runs one statement (or none) in the caller's session; the caller owns the
transaction. Functions taking conversation ids return nothing, without a query, for none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, ScalarSelect, Select, bindparam, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from annae.store.tables.service import Conversation, Message


def waiting(
    session: Session,
    limit: int | None,
    among: Select[str] | None = None,
    *,
    excluding: Select[str] | None = None,
    lock: bool = False,
) -> list[Conversation]:
    """Waiting conversations, oldest hand-off first (``among``: only those whose id it selects;
    ``excluding``: none whose id it selects; ``lock``: locked for update, skipping those another
    transaction holds, as the desk's auto-assignment takes them)."""
    stmt = (
        select(Conversation)
        .where(Conversation.state == "waiting")
        .order_by(Conversation.waiting_since, Conversation.id)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    if among is not None:
        stmt = stmt.where(Conversation.id.in_(among))
    if excluding is not None:
        stmt = stmt.where(Conversation.id.not_in(excluding))
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def _held(agent_id: ColumnElement[int] | InstrumentedAttribute[int]) -> Select[int]:
    """How many conversations the agent ``agent_id`` holds (state ``agent``)."""
    return (
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.assigned_agent_id == agent_id, Conversation.state == "agent")
    )


def held_count_of(agent_id: ColumnElement[int] | InstrumentedAttribute[int]) -> ScalarSelect[int]:
    """How many conversations the agent ``agent_id`` holds (state ``agent``), as a scalar
    subquery correlated to the caller's statement (``agent_id`` is one of its columns): the
    desk's locked agent pick stays one statement."""
    return _held(agent_id).correlate_except(Conversation).scalar_subquery()


def recent(
    session: Session, limit: int, *, state: str | None = None, agent_id: int | None = None
) -> list[Conversation]:
    """Conversations, most recently updated first, optionally in ``state`` or assigned to
    ``agent_id``."""
    stmt = (
        select(Conversation).order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit)
    )
    if state:
        stmt = stmt.where(Conversation.state == state)
    if agent_id is not None:
        stmt = stmt.where(Conversation.assigned_agent_id == agent_id)
    return list(session.scalars(stmt))


def open_count(session: Session, among: Select[str]) -> int:
    """How many of the conversations whose id ``among`` selects are open (waiting or with an
    agent)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.id.in_(among), Conversation.state.in_(("waiting", "agent")))
        )
        or 0
    )


_HELD_BY = _held(bindparam("user_id"))


def held_by(session: Session, user_id: int) -> int:
    """How many conversations the agent ``user_id`` holds (state ``agent``); the statement is
    built once: it runs in hand-offs, after routing's locked agent pick."""
    return session.scalar(_HELD_BY, {"user_id": user_id}) or 0


def held_by_agent(session: Session) -> dict[int, int]:
    """How many conversations each agent holds (state ``agent``); agents holding none are left
    out."""
    rows = session.execute(
        select(Conversation.assigned_agent_id, func.count())
        .where(Conversation.state == "agent", Conversation.assigned_agent_id.is_not(None))
        .group_by(Conversation.assigned_agent_id)
    )
    return {user_id: n for user_id, n in rows.tuples() if user_id is not None}


def assigned_agents(session: Session, conv_ids: Sequence[str]) -> dict[str, int | None]:
    """Each conversation's assigned agent's user id (None when nobody holds it)."""
    if not conv_ids:
        return {}
    stmt = select(Conversation.id, Conversation.assigned_agent_id)
    return dict(session.execute(stmt.where(Conversation.id.in_(conv_ids))).tuples().all())


def last_customer_texts(session: Session, conv_ids: Sequence[str]) -> dict[str, str]:
    """The text of each conversation's latest customer message (none for those without one)."""
    if not conv_ids:
        return {}
    last_ids = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(conv_ids), Message.sender == "customer")
        .group_by(Message.conversation_id)
    )
    texts = select(Message.conversation_id, Message.text).where(Message.id.in_(last_ids))
    return dict(session.execute(texts).tuples().all())


def customer_texts(session: Session, conv_id: str, limit: int = 50) -> list[str | None]:
    """The customer's last ``limit`` message texts in the conversation, newest first."""
    return list(
        session.scalars(
            select(Message.text)
            .where(Message.conversation_id == conv_id, Message.sender == "customer")
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )


def last_customer_question(session: Session, conv_id: str) -> Message | None:
    """The customer's latest typed message (not a choice) in the conversation, if any."""
    return session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conv_id, Message.sender == "customer", Message.type == "text"
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


def staff_messages(
    session: Session, conv_ids: Sequence[str]
) -> Sequence[tuple[str, str, str, int | None, datetime]]:
    """``(conversation_id, sender, text, agent_id, created_at)`` of the system and agent messages
    of the conversations, oldest first."""
    if not conv_ids:
        return []
    stmt = (
        select(
            Message.conversation_id,
            Message.sender,
            Message.text,
            Message.agent_id,
            Message.created_at,
        )
        .where(Message.conversation_id.in_(conv_ids), Message.sender.in_(("system", "agent")))
        .order_by(Message.id)
    )
    return session.execute(stmt).tuples().all()


def resolutions(session: Session, conv_ids: Sequence[str]) -> list[tuple[str, datetime]]:
    """``(conversation_id, created_at)`` of every "resolved" system message of the
    conversations (one per resolve; a reopened conversation can have several), in no
    particular order."""
    if not conv_ids:
        return []
    return list(
        session.execute(
            select(Message.conversation_id, Message.created_at).where(
                Message.conversation_id.in_(conv_ids),
                Message.sender == "system",
                Message.text == "resolved",
            )
        ).tuples()
    )


_LAST_ENTRIES = (
    select(Message.entry_id)
    .where(Message.conversation_id == bindparam("conv_id"), Message.entry_id.is_not(None))
    .order_by(Message.id.desc())
    .limit(3)
)


def last_entry_ids(session: Session, conv_id: str) -> list[int]:
    """The entries named by the conversation's last three messages that name one, newest first
    (a hand-off without a decision is routed by them)."""
    return [e for e in session.scalars(_LAST_ENTRIES, {"conv_id": conv_id}) if e is not None]
