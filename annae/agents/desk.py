"""The agents' desk: the queue, assignment, replies, resolve/hand back, and the bot's suggestions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.agents import csat, notes, routing, teams, users
from annae.agents.users import Identity
from annae.dialogue import conversations as convs
from annae.dialogue import desk_queries
from annae.dialogue.conversations import Conflict, Event
from annae.kb import entries
from annae.store.db import iso
from annae.store.tables.desk import Routing

if TYPE_CHECKING:
    from annae.store.tables.service import Conversation

queue_length = convs.queue_length


def _summaries(session: Session, rows: list[Conversation]) -> list[dict]:
    """List items with the agent's name and the last customer words, in three queries in all."""
    ids = [c.id for c in rows]
    if not ids:
        return []
    last = desk_queries.last_customer_texts(session, ids)
    names = users.usernames(
        session, {c.assigned_agent_id for c in rows if c.assigned_agent_id is not None}
    )
    team_of = routing.team_names(session, ids)
    out = []
    for conv in rows:
        item = convs.public_dict(conv)
        item.update(
            agent=names.get(conv.assigned_agent_id) if conv.assigned_agent_id is not None else None,
            customer_id=conv.customer_id,
            verified=bool(conv.verified),
            channel=conv.channel,
            waiting_since=iso(conv.waiting_since),
            waiting_seconds=convs.waiting_seconds(conv),
            last_message=last.get(conv.id),
            team=team_of.get(conv.id),
        )
        out.append(item)
    return out


def queue(session: Session, limit: int = 200, team: str | None = None) -> list[dict]:
    """Waiting conversations, oldest first, with reason, waiting time, team and the last customer
    words (``team``: only that team's queue)."""
    among = None
    if team is not None:  # one routing row per conversation: its id is the primary key
        among = select(Routing.conversation_id).where(
            Routing.team_id == teams.get_team(session, team).id
        )
    return _summaries(session, desk_queries.waiting(session, limit, among))


def list_conversations(
    session: Session, *, state: str | None = None, agent: Identity | None = None, limit: int = 50
) -> list[dict]:
    """Conversations, most recently updated first, optionally by state or assigned agent."""
    agent_id = agent.id if agent is not None else None
    return _summaries(session, desk_queries.recent(session, limit, state=state, agent_id=agent_id))


def suggestions(session: Session, conv_id: str) -> list[dict]:
    """The bot's top candidates for the last customer question: those in the conversation's
    language first (best first within each), with each entry's current answer."""
    last = desk_queries.last_customer_question(session, conv_id)
    decision = (last.decision or {}) if last is not None else {}
    cands = decision.get("candidates") or []
    ids = [c.get("entry_id") for c in cands if c.get("entry_id") is not None]
    found = entries.entries_by_id(session, ids)
    conv = convs.find(session, conv_id)
    language = (conv.language if conv is not None else None) or decision.get("language")
    out = []
    for cand in cands:
        entry = found.get(cand.get("entry_id"))
        out.append(
            {
                "entry_id": cand.get("entry_id"),
                "key": cand.get("key"),
                "question": entry.question if entry else cand.get("question"),
                "answer": entry.answer if entry else cand.get("answer"),
                "language": entry.language if entry else None,
                "confidence": cand.get("confidence"),
            }
        )
    if language:
        out.sort(key=lambda s: s["language"] != language)  # stable: confidence order kept
    return out


def detail(session: Session, conv_id: str) -> dict:
    """Everything the console shows for one conversation."""
    conv = convs.get(session, conv_id)
    return {
        **convs.summary_dict(session, conv),
        "messages": convs.messages(session, conv.id, with_decision=True),
        "suggestions": suggestions(session, conv.id),
        "previous": convs.previous_of(session, conv),
        "notes": notes.list_notes(session, conv.id),
        "team": routing.team_name_of(session, conv.id),
    }


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
    return convs.summary_dict(session, conv), routing.state_events(session, conv, [msg])


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
        events += routing.state_events(session, conv, [assigned])
    msg = convs.add_message(session, conv, "agent", "agent", text, agent_id=agent.id)
    conv.updated_at = msg.created_at
    events += convs.message_events(conv, [msg], agent.username)
    return convs.message_dict(msg, agent.username), events


def resolve(session: Session, conv_id: str, agent: Identity) -> tuple[dict, list[Event]]:
    """Close the conversation, ask the customer for a rating (CSAT), and give the agent who had it
    the next waiting conversation."""
    conv = convs.get(session, conv_id)
    had = conv.assigned_agent_id if conv.state == "agent" else None
    convs.transition(session, conv, "resolved", ("bot", "waiting", "agent"))
    msg = convs.add_message(session, conv, "system", "system", "resolved", agent_id=agent.id)
    ask = convs.add_message(session, conv, "bot", "csat", csat.ask_text(conv.language))
    events = routing.state_events(session, conv, [msg, ask])
    if had is not None:
        events += routing.fill(session, had)
    return convs.summary_dict(session, conv), events


def handback(session: Session, conv_id: str, agent: Identity) -> tuple[dict, list[Event]]:
    """Return the conversation to the bot (the agent's freed place goes to the queue)."""
    conv = convs.get(session, conv_id)
    had = conv.assigned_agent_id if conv.state == "agent" else None
    convs.transition(
        session, conv, "bot", ("waiting", "agent"), assigned_agent_id=None, handoff_reason=None
    )
    msg = convs.add_message(session, conv, "system", "system", "handback", agent_id=agent.id)
    events = routing.state_events(session, conv, [msg])
    if had is not None:
        events += routing.fill(session, had)
    return convs.summary_dict(session, conv), events
