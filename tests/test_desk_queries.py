"""The desk's reads of conversations and messages (``annae.dialogue.desk_queries``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, select

from annae.dialogue import conversations as convs
from annae.dialogue import desk_queries
from annae.store.db import aware, session_scope
from annae.store.tables.desk import Routing
from annae.store.tables.service import User

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)


def _conv(s, state: str, minute: int, agent_id: int | None = None) -> str:
    conv, _ = convs.create(s)
    conv.state = state
    conv.assigned_agent_id = agent_id
    conv.waiting_since = T0 + timedelta(minutes=minute) if state == "waiting" else None
    conv.updated_at = T0 + timedelta(minutes=minute)
    s.flush()
    return conv.id


def _say(s, conv_id: str, sender: str, text: str, type_: str | None = None, **fields) -> int:
    conv = convs.get(s, conv_id)
    type_ = type_ or ("text" if sender == "customer" else sender)
    return convs.add_message(s, conv, sender, type_, text, **fields).id


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_conversation_lists(engine) -> None:
    with session_scope(engine) as s:
        lee = User(username="lee", password_hash="-")
        s.add(lee)
        s.flush()
        late = _conv(s, "waiting", 30)
        early = _conv(s, "waiting", 10)
        taken = _conv(s, "agent", 20, agent_id=lee.id)
        _conv(s, "bot", 40)
        s.add(Routing(conversation_id=late, team_id=None, updated_at=T0))
    with session_scope(engine) as s:
        assert [c.id for c in desk_queries.waiting(s, 10)] == [early, late]
        assert [c.id for c in desk_queries.waiting(s, 1)] == [early]
        routed = select(Routing.conversation_id)
        assert [c.id for c in desk_queries.waiting(s, 10, routed)] == [late]
        assert [c.state for c in desk_queries.recent(s, 10)] == [
            "bot",
            "waiting",
            "agent",
            "waiting",
        ]
        assert [c.id for c in desk_queries.recent(s, 10, state="waiting")] == [late, early]
        assert [c.id for c in desk_queries.recent(s, 10, agent_id=lee.id)] == [taken]
        assert desk_queries.assigned_agents(s, [early, taken]) == {early: None, taken: lee.id}
        # already in the session: no round trip; unknown: None
        held = desk_queries.waiting(s, 1)[0]
        seen = _statements(engine)
        assert convs.find(s, early) is held
        assert seen == []
        assert convs.find(s, "nope") is None


def test_message_reads(engine) -> None:
    with session_scope(engine) as s:
        lee = User(username="lee", password_hash="-")
        s.add(lee)
        s.flush()
        a, b, quiet = _conv(s, "agent", 1), _conv(s, "resolved", 2), _conv(s, "bot", 3)
        _say(s, a, "customer", "where is my order")
        _say(s, a, "bot", "let me check")
        _say(s, a, "system", "assigned", "system", agent_id=lee.id)
        _say(s, a, "customer", "hello?")
        _say(s, a, "customer", "Shipping", "choice")
        _say(s, a, "agent", "resolved", agent_id=lee.id)  # an agent's words, not a resolve
        _say(s, b, "customer", "refund")
        _say(s, b, "system", "resolved", "system")
        _say(s, b, "customer", "again")
        _say(s, b, "system", "resolved", "system")
        _say(s, quiet, "bot", "hi")
    with session_scope(engine) as s:
        assert desk_queries.last_customer_texts(s, [a, b, quiet]) == {a: "Shipping", b: "again"}
        last = desk_queries.last_customer_question(s, a)
        assert last is not None and last.text == "hello?"
        assert desk_queries.last_customer_question(s, quiet) is None
        rows = desk_queries.staff_messages(s, [a, b])
        assert [(c, sender, text, agent) for c, sender, text, agent, _ in rows] == [
            (a, "system", "assigned", lee.id),
            (a, "agent", "resolved", lee.id),
            (b, "system", "resolved", None),
            (b, "system", "resolved", None),
        ]
        assert all(aware(at) >= T0 for *_, at in rows)
        assert sorted(c for c, _ in desk_queries.resolutions(s, [a, b, quiet])) == [b, b]
        seen = _statements(engine)
        assert desk_queries.last_customer_texts(s, []) == {}
        assert desk_queries.staff_messages(s, []) == []
        assert desk_queries.resolutions(s, []) == []
        assert desk_queries.assigned_agents(s, []) == {}
        assert seen == []


def test_open_and_held_counts(engine) -> None:
    with session_scope(engine) as s:
        lee, kim = User(username="lee", password_hash="-"), User(username="kim", password_hash="-")
        s.add_all([lee, kim])
        s.flush()
        queued = _conv(s, "waiting", 1)
        held = _conv(s, "agent", 2, agent_id=lee.id)
        _conv(s, "agent", 3, agent_id=lee.id)
        done = _conv(s, "resolved", 4, agent_id=kim.id)  # resolved: held by nobody
        _conv(s, "bot", 5)
        for conv_id in (queued, held, done):
            s.add(Routing(conversation_id=conv_id, team_id=None, updated_at=T0))
    with session_scope(engine) as s:
        routed = select(Routing.conversation_id)  # stands for a caller's subquery
        assert desk_queries.open_count(s, routed) == 2
        assert desk_queries.open_count(s, routed.where(Routing.conversation_id == done)) == 0
        assert desk_queries.held_by(s, lee.id) == 2
        assert desk_queries.held_by(s, kim.id) == 0
        assert desk_queries.held_by_agent(s) == {lee.id: 2}


def test_customer_texts_newest_first_and_limited(engine) -> None:
    with session_scope(engine) as s:
        conv_id = _conv(s, "bot", 1)
        for text in ("first", "second", "third"):
            _say(s, conv_id, "customer", text)
        _say(s, conv_id, "bot", "an answer", "answer")
        other = _conv(s, "bot", 2)
        _say(s, other, "customer", "elsewhere")
    with session_scope(engine) as s:
        assert desk_queries.customer_texts(s, conv_id) == ["third", "second", "first"]
        assert desk_queries.customer_texts(s, conv_id, limit=2) == ["third", "second"]


def test_last_entry_ids_newest_first(engine) -> None:
    with session_scope(engine) as s:
        conv_id = _conv(s, "bot", 1)
        _say(s, conv_id, "customer", "hello")
        for entry in (11, 12, 13, 14):
            _say(s, conv_id, "bot", f"answer {entry}", "answer", entry_id=entry)
        _say(s, conv_id, "customer", "thanks")
        empty = _conv(s, "bot", 2)
    with session_scope(engine) as s:
        assert desk_queries.last_entry_ids(s, conv_id) == [14, 13, 12]
        assert desk_queries.last_entry_ids(s, empty) == []
