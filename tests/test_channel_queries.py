"""The channels' reads of conversations and messages (``annae.dialogue.channel_queries``)."""

from __future__ import annotations

from sqlalchemy import event

from annae.dialogue import channel_queries
from annae.dialogue import conversations as convs
from annae.store.db import session_scope


def test_find_and_messages_after(engine) -> None:
    with session_scope(engine) as s:
        conv, _ = convs.create(s, channel="kakao:test")
        other, _ = convs.create(s)
        q = convs.add_message(s, conv, "customer", "text", "hello")
        convs.add_message(s, other, "agent", "text", "not this one")
        reply = convs.add_message(s, conv, "agent", "text", "hi, I'm Lee")
        done = convs.add_message(s, conv, "system", "system", "resolved")
        conv_id = conv.id
    with session_scope(engine) as s:
        found = convs.find(s, conv_id)
        assert found is not None and found.channel == "kakao:test"
        seen: list[str] = []
        event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
        assert convs.find(s, conv_id) is found  # from the identity map
        assert seen == []
        assert convs.find(s, "nope") is None

        after = channel_queries.messages_after(s, conv_id, q.id)
        assert [m.id for m in after] == [reply.id, done.id]
        assert [m.text for m in channel_queries.messages_after(s, conv_id, 0)][0] == "hello"
        assert channel_queries.messages_after(s, conv_id, done.id) == []
