"""Statements run on the driver's cursor (annae.store.direct): same transaction, same values as
SQLAlchemy's own execution, SQLAlchemy's exceptions; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import _pg_database
from sqlalchemy import bindparam, select, text, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from annae.dialogue import conversations as convs
from annae.store.db import aware, service_db, session_scope, utcnow
from annae.store.direct import Direct
from annae.store.tables.service import Conversation, Message

_SET_LANGUAGE = Direct(
    update(Conversation.__table__)
    .where(Conversation.__table__.c.id == bindparam("conv_id"))
    .values(language=bindparam("language"), updated_at=bindparam("at"))
)


def _conversation(engine) -> str:
    with session_scope(engine) as s:
        conv, _ = convs.create(s, language=None, channel="web")
        return conv.id


def test_a_direct_statement_is_part_of_the_sessions_transaction(engine):
    conv_id = _conversation(engine)
    at = utcnow() + timedelta(hours=1)
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        assert (
            _SET_LANGUAGE.execute(s, {"conv_id": conv_id, "language": "ko", "at": at}).rowcount == 1
        )
        # the session sees its own transaction's write
        assert s.scalar(select(Conversation.language).where(Conversation.id == conv_id)) == "ko"
        raise RuntimeError("roll back")
    with session_scope(engine) as s:
        assert s.get(Conversation, conv_id).language is None  # rolled back with the session
    with session_scope(engine) as s:
        assert (
            _SET_LANGUAGE.execute(s, {"conv_id": "nope", "language": "ko", "at": at}).rowcount == 0
        )
        _SET_LANGUAGE.execute(s, {"conv_id": conv_id, "language": "en", "at": at})
    with session_scope(engine) as s:
        conv = s.get(Conversation, conv_id)
        assert conv.language == "en"
        assert abs((aware(conv.updated_at) - at).total_seconds()) < 1e-3  # the type's conversion


def test_a_turns_messages_keep_their_order_values_and_nulls(engine):
    conv_id = _conversation(engine)
    with session_scope(engine) as s:
        conv = convs.get(s, conv_id)
        msgs = [
            convs.new_message(conv, "system", "system", "reopened"),
            convs.new_message(
                conv,
                "customer",
                "text",
                "제 메일은 a.b@example.com 이에요",
                decision={"model_version": "v1", "candidates": [{"key": "x"}]},
            ),
            convs.new_message(
                conv,
                "bot",
                "clarify",
                "Did you mean…",
                confidence=0.5,
                options=[{"entry_id": 3, "question": "배송?"}],
            ),
        ]
        convs.insert_messages(s, msgs)
    ids = [m.id for m in msgs]
    assert ids == sorted(ids) and len(set(ids)) == 3
    with session_scope(engine) as s:
        stored = s.scalars(
            select(Message).where(Message.conversation_id == conv_id).order_by(Message.id)
        ).all()
        assert [m.id for m in stored] == ids
        assert [m.type for m in stored] == ["system", "text", "clarify"]
        assert stored[1].text == "제 메일은 [EMAIL] 이에요"
        assert stored[1].decision == {"model_version": "v1", "candidates": [{"key": "x"}]}
        assert stored[2].options == [{"entry_id": 3, "question": "배송?"}]
        assert stored[2].confidence == 0.5
        # no options / decision: SQL NULL, as the ORM writes them, not JSON 'null'
        nulls = s.execute(
            text("SELECT COUNT(*) FROM messages WHERE conversation_id = :c AND options IS NULL"),
            {"c": conv_id},
        ).scalar()
        assert nulls == 2
        assert stored[0].decision is None and stored[0].created_at is not None


def test_driver_errors_come_as_sqlalchemys_and_the_session_rolls_back(engine):
    conv_id = _conversation(engine)
    with session_scope(engine) as s:
        conv = convs.get(s, conv_id)
        orphan = convs.new_message(conv, "bot", "answer", "hi")
    orphan.conversation_id = "no-such-conversation"
    with pytest.raises(sa_exc.IntegrityError), session_scope(engine) as s:
        convs.insert_messages(s, [orphan])
    with session_scope(engine) as s:
        assert s.scalar(select(Message.id).where(Message.text == "hi")) is None
        with pytest.raises(StaleDataError):  # a touch of a conversation that is gone
            convs._touch(s, Conversation(id="gone"), {"updated_at": utcnow()})


@pytest.mark.postgres
def test_a_lost_postgresql_connection_is_invalidated(migrated):
    url, drop = _pg_database(template=migrated.postgres())
    engine = service_db(url)
    try:
        conv_id = _conversation(engine)
        with pytest.raises(sa_exc.OperationalError) as caught, session_scope(engine) as s:
            pid = s.execute(text("SELECT pg_backend_pid()")).scalar()
            with engine.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            _SET_LANGUAGE.execute(s, {"conv_id": conv_id, "language": "ko", "at": utcnow()})
        assert caught.value.connection_invalidated
        with session_scope(engine) as s:  # the pool gave a working connection afterwards
            assert s.get(Conversation, conv_id).language is None
    finally:
        engine.dispose()
        drop()


def test_a_conversation_read_directly_is_the_sessions_own_instance(engine):
    conv_id = _conversation(engine)
    with session_scope(engine) as s:
        orm = s.scalars(select(Conversation).where(Conversation.id == conv_id)).one()
        columns = {c.key: getattr(orm, c.key) for c in Conversation.__table__.columns}
        assert convs.get(s, conv_id) is orm  # the identity map's instance, as a query gives
    with session_scope(engine) as s:
        conv = convs.get(s, conv_id)
        # every column as the ORM reads it (SQLite: booleans and dates converted by their types)
        assert {c.key: getattr(conv, c.key) for c in Conversation.__table__.columns} == columns
        assert conv.verified is False and aware(conv.created_at).tzinfo is not None
        assert conv in s and not s.dirty and s.get(Conversation, conv_id) is conv
        conv.customer_name = "민지"  # a loaded instance: its changes flush as usual
    with session_scope(engine) as s:
        assert convs.get(s, conv_id).customer_name == "민지"
        with pytest.raises(convs.NotFound):
            convs.get(s, "no-such-conversation")


def test_many_messages_and_a_conversation_not_yet_flushed(engine):
    with session_scope(engine) as s:
        fresh = Conversation(id="f" * 32, token_hash="0" * 64, channel="web", state="bot")
        s.add(fresh)  # pending: read as the session's query reads it, after an autoflush
        assert convs.get(s, fresh.id) is fresh
        msgs = [convs.new_message(fresh, "bot", "answer", f"line {i}") for i in range(19)]
        convs.insert_messages(s, msgs)  # more than one INSERT's worth of rows
    assert [m.id for m in msgs] == sorted(m.id for m in msgs)
    with session_scope(engine) as s:
        stored = s.execute(
            select(Message.id, Message.text).where(Message.conversation_id == "f" * 32)
        ).all()
        assert sorted(stored) == [(m.id, m.text) for m in msgs]
