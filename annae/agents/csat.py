"""Customer satisfaction (CSAT): after a resolve the customer is asked for 1-5 and a comment.

One rating per resolution, tied to the agent who had the conversation (NULL: the bot) and its team.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.dialogue.conversations import Conflict, Invalid
from annae.store.db import iso, utcnow
from annae.store.tables.desk import Csat, Routing
from annae.store.tables.service import Conversation

MAX_COMMENT = 2000
ASK = {
    "en": "How satisfied are you with this conversation? Rate it from 1 (poor) to 5 (excellent).",
    "ko": "이번 상담은 만족스러우셨나요? 1점(불만족)부터 5점(매우 만족)까지 평가해 주세요.",
}
THANKS = {"en": "Thank you for your rating!", "ko": "평가해 주셔서 감사합니다!"}


def ask_text(language: str | None) -> str:
    return ASK.get(language or "en", ASK["en"])


def submit(session: Session, conv: Conversation, score, comment: str | None = None) -> dict:
    """Store the customer's rating of the latest resolution (409 if not resolved or already rated)."""
    if not isinstance(score, int) or isinstance(score, bool) or not 1 <= score <= 5:
        raise Invalid("score must be a whole number from 1 to 5")
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise Invalid(f"the comment has at most {MAX_COMMENT} characters")
    if conv.state != "resolved" or conv.resolved_at is None:
        raise Conflict(
            f"conversation {conv.id} is {conv.state}; ratings are for resolved conversations"
        )
    existing = session.scalar(
        select(Csat.id).where(Csat.conversation_id == conv.id, Csat.resolved_at == conv.resolved_at)
    )
    if existing is not None:
        raise Conflict("this conversation is already rated")
    row = Csat(
        conversation_id=conv.id,
        resolved_at=conv.resolved_at,
        agent_id=conv.assigned_agent_id,
        team_id=session.scalar(select(Routing.team_id).where(Routing.conversation_id == conv.id)),
        score=score,
        comment=comment,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return {
        "conversation_id": conv.id,
        "score": score,
        "comment": comment,
        "by": "agent" if row.agent_id is not None else "bot",
        "created_at": iso(row.created_at),
        "thanks": THANKS.get(conv.language or "en", THANKS["en"]),
    }


def status(session: Session, conv: Conversation) -> dict:
    """Whether the customer may rate now and their rating of the latest resolution."""
    row = (
        session.scalar(
            select(Csat).where(
                Csat.conversation_id == conv.id, Csat.resolved_at == conv.resolved_at
            )
        )
        if conv.resolved_at is not None
        else None
    )
    return {
        "can_rate": conv.state == "resolved" and row is None,
        "score": row.score if row else None,
        "comment": row.comment if row else None,
    }
