"""Reading stored conversations and messages for the packages above dialogue (learning's
analytics, labels, ratings and calibration): they call these instead of querying the tables.

Functions read in the caller's session (the caller owns the transaction) and return the stored
rows, oldest first where an order is promised. Where the caller narrows the rows by its own
tables (conversations an agent labelled, answers rated not helpful), it passes the ids as a list
or as a subquery of its own, so the filter stays in one SQL statement.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from annae.store.tables.service import Conversation, Message

Ids = Collection[int] | Select[int]
ConvIds = Collection[str] | Select[str]
T = TypeVar("T")


def created_between(
    session: Session, start: datetime | None, end: datetime | None
) -> list[Conversation]:
    """Conversations created in ``[start, end)`` (a bound left out is open), oldest first
    (ties by id)."""
    stmt = select(Conversation).order_by(Conversation.created_at, Conversation.id)
    if start is not None:
        stmt = stmt.where(Conversation.created_at >= start)
    if end is not None:
        stmt = stmt.where(Conversation.created_at < end)
    return list(session.scalars(stmt))


def messages_of(
    session: Session, conv_ids: Collection[str], *, exclude_sender: str | None = None
) -> list[Message]:
    """Every message of the conversations ``conv_ids``, oldest first (by id); without those
    ``exclude_sender`` wrote when given."""
    stmt = select(Message).where(Message.conversation_id.in_(list(conv_ids)))
    if exclude_sender is not None:
        stmt = stmt.where(Message.sender != exclude_sender)
    return list(session.scalars(stmt.order_by(Message.id)))


def get_message(session: Session, message_id: int) -> Message | None:
    """The message with id ``message_id``, if it is (still) stored."""
    return session.get(Message, message_id)


def messages_with_ids(
    session: Session, ids: Ids, *, skip_conversations: ConvIds | None = None
) -> list[Message]:
    """The stored messages among ``ids``, in no particular order; none of the conversations
    ``skip_conversations`` when given."""
    stmt = select(Message).where(Message.id.in_(ids))
    if skip_conversations is not None:
        stmt = stmt.where(Message.conversation_id.not_in(skip_conversations))
    return list(session.scalars(stmt))


def message_texts(session: Session, ids: Ids | Select[int | None]) -> list[str | None]:
    """The text of each stored message among ``ids`` (one per message; a NULL id matches
    none), in no particular order."""
    return list(session.scalars(select(Message.text).where(Message.id.in_(ids))))


def stored_message_ids() -> Select[int]:
    """Every stored message's id, as a subquery: for another package's rows that point at
    messages by id, to keep only those whose message still exists (erasure deletes messages)."""
    return select(Message.id)


def _first(
    column: type[T] | InstrumentedAttribute[T], conv_id: str, *criteria: Any, latest: bool = False
) -> Select[T]:
    """``column`` of the conversation's first message meeting ``criteria`` (``latest``: its last)."""
    return (
        select(column)
        .where(Message.conversation_id == conv_id, *criteria)
        .order_by(Message.id.desc() if latest else Message.id)
        .limit(1)
    )


def next_bot_message(session: Session, conv_id: str, after_id: int) -> Message | None:
    """The bot's first message after message ``after_id`` in the conversation, if any."""
    return session.scalar(_first(Message, conv_id, Message.sender == "bot", Message.id > after_id))


def customer_message_before(session: Session, msg: Message) -> Message | None:
    """The customer's latest message before ``msg`` in its conversation (for a bot answer: the
    question it answered), if any."""
    before = (Message.sender == "customer", Message.id < msg.id)
    return session.scalar(_first(Message, msg.conversation_id, *before, latest=True))


def first_message_id(session: Session, conv_id: str, sender: str) -> int | None:
    """The id of the first message ``sender`` wrote in the conversation, if any."""
    return session.scalar(_first(Message.id, conv_id, Message.sender == sender))


def last_text(session: Session, conv_id: str, sender: str) -> str | None:
    """The text of the latest message ``sender`` wrote in the conversation, if any."""
    return session.scalar(_first(Message.text, conv_id, Message.sender == sender, latest=True))


def customer_texts(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    skip_conversations: ConvIds | None = None,
) -> list[tuple[Message, str | None]]:
    """Every text customers wrote (``[since, until)`` when given), with its conversation's
    language, oldest first (by id); none of the conversations ``skip_conversations``."""
    stmt = (
        select(Message, Conversation.language)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Message.sender == "customer", Message.type == "text")
        .order_by(Message.id)
    )
    if skip_conversations is not None:
        stmt = stmt.where(Message.conversation_id.not_in(skip_conversations))
    if since is not None:
        stmt = stmt.where(Message.created_at >= since)
    if until is not None:
        stmt = stmt.where(Message.created_at < until)
    return list(session.execute(stmt).tuples())


def decision_counts(session: Session, model_version: str | None) -> dict[str | None, int]:
    """How many customer messages the model ``model_version`` (None: any model) decided, by
    decision type (``answer``, ``handoff``, ``clarify``, …), counted in SQL."""
    kind = Message.decision["type"].as_string()
    stmt = select(kind, func.count()).where(Message.sender == "customer")
    if model_version is not None:
        stmt = stmt.where(Message.decision["model_version"].as_string() == model_version)
    rows = session.execute(stmt.group_by(kind))
    return {name: n for name, n in rows.tuples()}


def decisions(session: Session, ids: Collection[int]) -> dict[int, Any]:
    """The stored decision of each message among ``ids`` (its ``decision`` column only)."""
    rows = session.execute(select(Message.id, Message.decision).where(Message.id.in_(ids)))
    return {msg_id: decision for msg_id, decision in rows.tuples()}
