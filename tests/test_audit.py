"""The append-only audit log: record, query, no content, no update or delete (ORM and DB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DatabaseError
from typer.testing import CliRunner

from annae.privacy import audit
from annae.privacy.cli import app
from annae.store.db import session_scope
from annae.store.tables.privacy import AuditEvent, AuditLogIsAppendOnly


def _count(engine) -> int:
    with session_scope(engine) as s:
        return s.scalar(select(func.count()).select_from(AuditEvent))


def test_record_and_query(engine) -> None:
    with session_scope(engine) as s:
        audit.record(s, "admin", "kb.import", "faq.csv", {"added": 12, "updated": 3, "messages": 0})
        audit.record(s, "admin", "model.promote", "v7", {"from": "v6"})
        audit.record(s, "lee", "kb.edit", "entry:12")
    with session_scope(engine) as s:
        events = audit.query(s)
        assert [e.action for e in events] == ["kb.edit", "model.promote", "kb.import"]
        assert audit.query(s, limit=1)[0].action == "kb.edit"
        assert [e.target for e in audit.query(s, action="kb.")] == ["entry:12", "faq.csv"]
        assert [e.action for e in audit.query(s, actor="admin", action="kb.import")] == [
            "kb.import"
        ]
        assert audit.query(s, target="v7")[0].details == {"from": "v6"}
        assert audit.query(s, since=datetime.now(UTC) + timedelta(hours=1)) == []
        assert len(audit.query(s, until=datetime.now(UTC) + timedelta(hours=1))) == 3
        d = audit.to_dict(events[-1])
        assert d["details"] == {"added": 12, "updated": 3, "messages": 0} and d["at"].endswith(
            "+00:00"
        )
        with pytest.raises(audit.AuditError, match="limit"):
            audit.query(s, limit=0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "kb.import"), "actor"),
        (("admin", "KB Import"), "action"),
        (("admin", "kb.import", "t", {"text": "hello"}), "content"),
        (("admin", "kb.import", "t", {"Message": "hi"}), "content"),
        (("admin", "kb.import", "t", {"note": "x" * 201}), "longer than"),
        (("admin", "kb.import", "t", {"nested": {"a": 1}}), "must be a number"),
        (("admin", "kb.import", "t", ["not", "a", "dict"]), "must be a dict"),
        (("admin", "kb.import", "x" * 501), "target"),
    ],
)
def test_bad_events_are_refused_and_nothing_written(engine, args, message) -> None:
    with pytest.raises(audit.AuditError, match=message):
        with session_scope(engine) as s:
            audit.record(s, "admin", "ok.first")
            audit.record(s, *args)
    assert _count(engine) == 0


def test_personal_data_in_details_is_redacted(engine) -> None:
    with session_scope(engine) as s:
        ev = audit.record(
            s,
            "admin",
            "privacy.export",
            "cust-1",
            {"sent_to": "minji.kim@example.com", "ids": [1, 2]},
        )
    with session_scope(engine) as s:
        assert s.get(AuditEvent, ev.id).details == {"sent_to": "[EMAIL]", "ids": [1, 2]}


def test_orm_refuses_update_and_delete(engine) -> None:
    with session_scope(engine) as s:
        ev_id = audit.record(s, "admin", "kb.import", "a.csv").id
    with pytest.raises(AuditLogIsAppendOnly):
        with session_scope(engine) as s:
            s.get(AuditEvent, ev_id).actor = "someone else"
    with pytest.raises(AuditLogIsAppendOnly):
        with session_scope(engine) as s:
            s.delete(s.get(AuditEvent, ev_id))
    with pytest.raises(AuditLogIsAppendOnly):
        with session_scope(engine) as s:
            s.execute(update(AuditEvent).values(actor="x"))
    with pytest.raises(AuditLogIsAppendOnly):
        with session_scope(engine) as s:
            s.execute(delete(AuditEvent))
    with session_scope(engine) as s:
        assert s.get(AuditEvent, ev_id).actor == "admin"


def test_database_trigger_refuses_raw_sql(engine) -> None:
    with session_scope(engine) as s:
        audit.record(s, "admin", "kb.import", "a.csv")
    for sql in ("UPDATE privacy_audit_log SET actor = 'x'", "DELETE FROM privacy_audit_log"):
        with pytest.raises(DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(sql))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DatabaseError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE privacy_audit_log"))
    assert _count(engine) == 1


def test_cli_audit(annae_home) -> None:
    from annae.settings import get_settings
    from annae.store.db import get_engine

    with session_scope(get_engine(get_settings().database)) as s:
        for i in range(5):
            audit.record(s, "admin", "kb.edit", f"entry:{i}", {"n": i})
    runner = CliRunner()
    out = runner.invoke(app, ["audit", "--limit", "2", "--json"])
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["target"] for r in rows] == ["entry:4", "entry:3"]
    out = runner.invoke(app, ["audit", "--limit", "3"])
    assert out.exit_code == 0 and "entry:4" in out.output and "entry:1" not in out.output
    out = runner.invoke(app, ["audit", "--limit", "0"])
    assert out.exit_code != 0
