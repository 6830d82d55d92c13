"""The transcript reads other packages make through annae.dialogue.history, on a small history."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from annae.dialogue import conversations, history
from annae.store.db import session_scope, utcnow
from annae.store.tables.service import Conversation, Message


def test_one_conversation_read_in_order_by_sender_and_type(engine) -> None:
    with session_scope(engine) as s:
        conv, _ = conversations.create(s, language="en")
        other, _ = conversations.create(s)

        def add(sender: str, type_: str, text: str, **fields):
            return conversations.add_message(s, conv, sender, type_, text, **fields)

        q1 = add("customer", "text", "where is my parcel")
        answer = add("bot", "answer", "It ships in 2 days.")
        q2 = add("customer", "text", "still nothing")
        handoff = add("bot", "handoff", "Connecting you…")
        add("agent", "text", "Let me check.")
        add("system", "system", "reopened")
        add("customer", "text", "thanks")
        again = add("bot", "answer", "You're welcome.")
        add("agent", "text", "Bye!")

        texts = [m.text for m in history.messages_of(s, [conv.id])]
        assert texts[0] == "where is my parcel" and texts[-1] == "Bye!" and len(texts) == 9
        without_agents = history.messages_of(s, [conv.id], exclude_sender="agent")
        assert [m.text for m in without_agents] == [
            t for t in texts if t not in ("Let me check.", "Bye!")
        ]
        assert history.messages_of(s, [other.id]) == []

        assert history.next_bot_message(s, conv.id, q1.id) is answer
        assert history.next_bot_message(s, conv.id, q2.id) is handoff
        assert history.next_bot_message(s, conv.id, again.id) is None
        assert history.customer_message_before(s, handoff) is q2
        assert history.customer_message_before(s, q1) is None
        assert conversations.last_bot_message(s, conv.id) is again
        assert conversations.last_bot_message(s, conv.id, "handoff") is handoff
        assert conversations.last_bot_message(s, conv.id, "clarify") is None

        first_agent = history.first_message_id(s, conv.id, "agent")
        assert first_agent is not None and handoff.id < first_agent < again.id
        assert history.last_text(s, conv.id, "agent") == "Bye!"
        assert history.last_text(s, other.id, "agent") is None
        assert history.get_message(s, q2.id) is q2


def test_reads_across_conversations_with_the_callers_filters(engine) -> None:
    now = utcnow()
    with session_scope(engine) as s:
        old, _ = conversations.create(s, language="ko")
        new, _ = conversations.create(s, language="en")
        old.created_at = now - timedelta(days=3)
        s.flush()

        v1 = {"type": "answer", "model_version": "v1"}
        a = conversations.add_message(s, old, "customer", "text", "배송", decision=v1)
        b = conversations.add_message(
            s,
            new,
            "customer",
            "text",
            "refund",
            decision={"type": "handoff", "model_version": "v1"},
        )
        c = conversations.add_message(
            s, new, "customer", "text", "hello", decision={"type": "answer", "model_version": "v2"}
        )
        reply = conversations.add_message(s, new, "bot", "answer", "Hello!")

        assert [x.id for x in history.created_between(s, None, None)] == [old.id, new.id]
        assert [x.id for x in history.created_between(s, now - timedelta(days=1), None)] == [new.id]
        assert [x.id for x in history.created_between(s, None, now - timedelta(days=1))] == [old.id]

        texts = history.customer_texts(s)
        assert [(m.id, lang) for m, lang in texts] == [(a.id, "ko"), (b.id, "en"), (c.id, "en")]
        skip_new = select(Conversation.id).where(Conversation.id == new.id)  # a caller's subquery
        assert [m.id for m, _ in history.customer_texts(s, skip_conversations=skip_new)] == [a.id]
        assert [m.id for m, _ in history.customer_texts(s, since=now)] == [a.id, b.id, c.id]
        assert history.customer_texts(s, until=now) == []

        ids = [a.id, b.id, reply.id, 10**9]
        assert {m.id for m in history.messages_with_ids(s, ids)} == {a.id, b.id, reply.id}
        kept = history.messages_with_ids(s, ids, skip_conversations=[new.id])
        assert [m.id for m in kept] == [a.id]
        assert set(s.scalars(history.stored_message_ids())) == {a.id, b.id, c.id, reply.id}

        assert history.decision_counts(s, "v1") == {"answer": 1, "handoff": 1}
        assert history.decision_counts(s, "v3") == {}
        assert history.decisions(s, [a.id, reply.id]) == {a.id: v1, reply.id: None}


def test_message_texts_by_ids_or_a_callers_subquery(engine) -> None:
    with session_scope(engine) as s:
        conv, _ = conversations.create(s)
        q = conversations.add_message(s, conv, "customer", "text", "is this a FAQ?")
        same = conversations.add_message(s, conv, "customer", "text", "is this a FAQ?")
        reply = conversations.add_message(s, conv, "bot", "answer", "Sorry?")

        # one text per stored message (equal texts of two messages both come back)
        texts = history.message_texts(s, [q.id, same.id, 10**9])
        assert sorted(texts) == ["is this a FAQ?", "is this a FAQ?"]
        bots = select(Message.id).where(Message.sender == "bot")  # stands for a caller's subquery
        assert history.message_texts(s, bots) == ["Sorry?"]
        assert history.message_texts(s, [reply.id + 1]) == []
