"""Reads of conversations and messages for the customer channels (Kakao, e-mail, their hooks).

Each function runs one statement (or none) in the caller's session; the caller owns the
transaction and any lock it took on its own rows.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.store.tables.service import Message


def messages_after(session: Session, conv_id: str, after_id: int) -> list[Message]:
    """Every message of the conversation after message ``after_id`` (all senders), oldest first
    (by id)."""
    return list(
        session.scalars(
            select(Message)
            .where(Message.conversation_id == conv_id, Message.id > after_id)
            .order_by(Message.id)
        )
    )
