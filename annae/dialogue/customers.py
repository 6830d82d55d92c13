"""What the conversation service holds about a customer (the ``customer_id`` a channel gives a
conversation): their conversations and messages, exported and erased through
``annae.privacy.rights``, which imports this module by name; importing it registers them there."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from annae.dialogue import conversations, history
from annae.privacy import rights
from annae.store.db import rowcount
from annae.store.tables.service import Conversation, Message


def conversations_of(session: Session, customer_id: str) -> list[str]:
    """The ids of the customer's conversations, oldest first."""
    stmt = (
        select(Conversation.id)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.created_at)
    )
    return list(session.scalars(stmt))


def export_customer(session: Session, customer_id: str) -> dict:
    """The customer's conversations, each with its messages and their stored decisions."""
    convs = []
    for conv_id in conversations_of(session, customer_id):
        conv = conversations.get(session, conv_id)
        convs.append(
            {
                **conversations.summary_dict(session, conv),
                "messages": conversations.messages(session, conv_id, with_decision=True),
            }
        )
    return {"conversations": convs}


def erase_customer(session: Session, customer_id: str) -> dict[str, int]:
    """Delete the customer's conversations and their messages; how many of each."""
    conv_ids = conversations_of(session, customer_id)
    messages = delete(Message).where(Message.conversation_id.in_(conv_ids))
    convs = delete(Conversation).where(Conversation.id.in_(conv_ids))
    return {
        "messages": rowcount(session.execute(messages)),
        "conversations": rowcount(session.execute(convs)),
    }


def expire(session: Session, cutoff: datetime) -> tuple[int, int, dict[str, dict[str, int]]]:
    """Delete transcripts whose last activity is before ``cutoff`` (those waiting for or talking
    with an agent stay whatever their age): (conversations, messages, counts per channel,
    language and state, with no ids or text)."""
    old = list(
        session.execute(
            select(
                Conversation.id, Conversation.channel, Conversation.language, Conversation.state
            ).where(Conversation.updated_at < cutoff, Conversation.state.in_(("bot", "resolved")))
        )
    )
    stats: dict[str, dict[str, int]] = {"channel": {}, "language": {}, "state": {}}
    for row in old:
        for key in stats:
            value = getattr(row, key) or "unknown"
            stats[key][value] = stats[key].get(value, 0) + 1
    ids, messages = [row.id for row in old], 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        messages += rowcount(
            session.execute(delete(Message).where(Message.conversation_id.in_(chunk)))
        )
        session.execute(delete(Conversation).where(Conversation.id.in_(chunk)))
    return len(ids), messages, stats


def exchange(session: Session, message_id: int) -> tuple[Message | None, Message | None]:
    """(the customer's message, the bot's reply to it) from either one's id: (None, None) for an
    unknown id, (None, message) for a message that follows no customer message."""
    msg = session.get(Message, message_id) if isinstance(message_id, int) else None
    if msg is None:
        return None, None
    if msg.sender == "customer":
        return msg, history.next_bot_message(session, msg.conversation_id, msg.id)
    return history.customer_message_before(session, msg), msg


def customers(session: Session) -> set[str]:
    """Every customer id a conversation carries."""
    return {c for c in session.scalars(select(Conversation.customer_id).distinct()) if c}


rights.register(
    __name__,
    rights.Holder(
        holds=lambda session, customer_id: bool(conversations_of(session, customer_id)),
        export=export_customer,
        erase=erase_customer,
        customers=customers,
        conversations=conversations_of,
        expire=expire,
        exchange=exchange,
    ),
)
