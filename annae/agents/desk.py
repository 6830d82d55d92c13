"""The agents' desk: the queue, assignment, replies, resolve/hand back, and the bot's suggestions."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.agents.users import Identity
from annae.dialogue import conversations as convs
from annae.dialogue.conversations import Conflict, Event
from annae.store.tables.service import Conversation, Message

queue_length = convs.queue_length


def _last_customer_message(session: Session, conv_id: str) -> Message | None:
    return session.scalar(
        select(Message)
        .where(Message.conversation_id == conv_id, Message.sender == "customer")
        .order_by(Message.id.desc())
        .limit(1)
    )


def queue(session: Session, limit: int = 200) -> list[dict]:
    """Waiting conversations, oldest first, with reason, waiting time and the last customer words."""
    rows = session.scalars(
        select(Conversation)
        .where(Conversation.state == "waiting")
        .order_by(Conversation.waiting_since, Conversation.id)
        .limit(limit)
    )
    out = []
    for conv in rows:
        last = _last_customer_message(session, conv.id)
        out.append(
            {**convs.summary_dict(session, conv), "last_message": last.text if last else None}
        )
    return out


def list_conversations(
    session: Session, *, state: str | None = None, agent: Identity | None = None, limit: int = 50
) -> list[dict]:
    """Conversations, most recently updated first, optionally by state or assigned agent."""
    stmt = (
        select(Conversation).order_by(Conversation.updated_at.desc(), Conversation.id).limit(limit)
    )
    if state:
        stmt = stmt.where(Conversation.state == state)
    if agent is not None:
        stmt = stmt.where(Conversation.assigned_agent_id == agent.id)
    out = []
    for conv in session.scalars(stmt):
        last = _last_customer_message(session, conv.id)
        out.append(
            {**convs.summary_dict(session, conv), "last_message": last.text if last else None}
        )
    return out


def suggestions(session: Session, conv_id: str) -> list[dict]:
    """The bot's top candidates for the last customer question, best first."""
    last = session.scalar(
        select(Message)
        .where(
            Message.conversation_id == conv_id, Message.sender == "customer", Message.type == "text"
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    decision = (last.decision or {}) if last is not None else {}
    out = []
    for cand in decision.get("candidates") or []:
        out.append(
            {
                "entry_id": cand.get("entry_id"),
                "key": cand.get("key"),
                "question": cand.get("question"),
                "answer": cand.get("answer"),
                "confidence": cand.get("confidence"),
            }
        )
    return out


def detail(session: Session, conv_id: str) -> dict:
    """Everything the console shows for one conversation."""
    conv = convs.get(session, conv_id)
    return {
        **convs.summary_dict(session, conv),
        "messages": convs.messages(session, conv.id, with_decision=True),
        "suggestions": suggestions(session, conv.id),
    }


def _state_events(session: Session, conv: Conversation, extra: list[Message] = ()) -> list[Event]:
    st = convs.state_event(session, conv)
    events: list[Event] = [
        (f"conv:{conv.id}", st),
        ("agents", {**st, "queue_length": queue_length(session)}),
    ]
    for msg in extra:
        payload = {
            "event": "message",
            "conversation_id": conv.id,
            "message": convs.message_dict(msg),
        }
        events.append((f"conv:{conv.id}", payload))
        events.append(("agents", payload))
    return events


def assign(
    session: Session, conv_id: str, agent: Identity, *, force: bool = False
) -> tuple[dict, list[Event]]:
    """Give the conversation to ``agent`` (from ``waiting`` or ``bot``; ``force`` takes it from another agent)."""
    conv = convs.get(session, conv_id)
    if conv.state == "agent" and conv.assigned_agent_id == agent.id:
        return convs.summary_dict(session, conv), []
    allowed = ("waiting", "bot", "agent") if force else ("waiting", "bot")
    if conv.state == "agent" and not force:
        raise Conflict(
            f"conversation {conv.id} is already assigned to {convs.agent_name(session, conv)}"
        )
    convs.transition(session, conv, "agent", allowed, assigned_agent_id=agent.id)
    msg = convs.add_message(session, conv, "system", "system", "assigned", agent_id=agent.id)
    return convs.summary_dict(session, conv), _state_events(session, conv, [msg])


def reply(session: Session, conv_id: str, agent: Identity, text: str) -> tuple[dict, list[Event]]:
    """An agent's message to the customer; takes the conversation if nobody holds it."""
    conv = convs.get(session, conv_id)
    if conv.state == "resolved":
        raise Conflict(f"conversation {conv.id} is resolved")
    events: list[Event] = []
    if conv.state in ("waiting", "bot"):
        convs.transition(session, conv, "agent", ("waiting", "bot"), assigned_agent_id=agent.id)
        assigned = convs.add_message(
            session, conv, "system", "system", "assigned", agent_id=agent.id
        )
        events += _state_events(session, conv, [assigned])
    msg = convs.add_message(session, conv, "agent", "agent", text, agent_id=agent.id)
    conv.updated_at = msg.created_at
    events += convs.message_events(conv, [msg], agent.username)
    return convs.message_dict(msg, agent.username), events


def resolve(session: Session, conv_id: str, agent: Identity) -> tuple[dict, list[Event]]:
    conv = convs.get(session, conv_id)
    convs.transition(session, conv, "resolved", ("bot", "waiting", "agent"))
    msg = convs.add_message(session, conv, "system", "system", "resolved", agent_id=agent.id)
    return convs.summary_dict(session, conv), _state_events(session, conv, [msg])


def handback(session: Session, conv_id: str, agent: Identity) -> tuple[dict, list[Event]]:
    """Return the conversation to the bot."""
    conv = convs.get(session, conv_id)
    convs.transition(
        session, conv, "bot", ("waiting", "agent"), assigned_agent_id=None, handoff_reason=None
    )
    msg = convs.add_message(session, conv, "system", "system", "handback", agent_id=agent.id)
    return convs.summary_dict(session, conv), _state_events(session, conv, [msg])
