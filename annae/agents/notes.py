"""Private notes on conversations and @mentions: agents only, never the customer or a channel.

Notes live in their own table (not ``messages``), so no customer-facing read (transcript,
WebSocket, channel delivery) can include them; their events go to the ``agents`` channel only.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.agents.users import Identity, active_ids, usernames
from annae.dialogue import conversations as convs
from annae.dialogue.conversations import Event, Invalid
from annae.store.db import iso, utcnow
from annae.store.tables.desk import Note

MAX_NOTE = 4000
_MENTION = re.compile(r"(?<![\w.@])@([A-Za-z0-9_.-]{1,100})")


def mentioned(text: str) -> list[str]:
    """Usernames written as ``@name`` (a trailing full stop is punctuation, not the name)."""
    return sorted({m.rstrip(".") for m in _MENTION.findall(text)})


def add_note(
    session: Session, conv_id: str, author: Identity, text: str
) -> tuple[dict, list[Event]]:
    """Store a private note; every ``@name`` must be an active user (400 otherwise)."""
    text = (text or "").strip() if isinstance(text, str) else ""
    if not text:
        raise Invalid("note text is empty")
    if len(text) > MAX_NOTE:
        raise Invalid(f"a note has at most {MAX_NOTE} characters")
    conv = convs.get(session, conv_id)
    names = mentioned(text)
    users = active_ids(session, names)
    unknown = [n for n in names if n not in users]
    if unknown:
        raise Invalid(f"@{unknown[0]} is not an agent")
    note = Note(
        conversation_id=conv.id,
        author_id=author.id,
        text=text,
        mentions=sorted(users.values()),
        created_at=utcnow(),
    )
    session.add(note)
    session.flush()
    out = note_dict(note, author.username, sorted(users))
    events: list[Event] = [("agents", {"event": "note", "conversation_id": conv.id, "note": out})]
    for name in sorted(users):
        events.append(
            (
                "agents",
                {"event": "mention", "user": name, "conversation_id": conv.id, "note": out},
            )
        )
    return out, events


def note_dict(note: Note, author: str | None, mentions: list[str]) -> dict:
    return {
        "id": note.id,
        "conversation_id": note.conversation_id,
        "author": author,
        "text": note.text,
        "mentions": mentions,
        "created_at": iso(note.created_at),
    }


def _dicts(session: Session, rows: list[Note]) -> list[dict]:
    """Notes as dicts, with author and mentioned names in one query."""
    ids = {r.author_id for r in rows if r.author_id} | {i for r in rows for i in r.mentions or []}
    names = usernames(session, ids)
    return [
        note_dict(
            r,
            names.get(r.author_id) if r.author_id is not None else None,
            sorted(names.get(i, "?") for i in r.mentions or []),
        )
        for r in rows
    ]


def list_notes(session: Session, conv_id: str) -> list[dict]:
    conv = convs.get(session, conv_id)
    rows = session.scalars(select(Note).where(Note.conversation_id == conv.id).order_by(Note.id))
    return _dicts(session, list(rows))


def mentions_of(session: Session, user: Identity, limit: int = 50) -> list[dict]:
    """Recent notes that mention ``user``, newest first."""
    rows = session.scalars(select(Note).order_by(Note.id.desc()).limit(2000))
    return _dicts(session, [r for r in rows if user.id in (r.mentions or [])][:limit])
