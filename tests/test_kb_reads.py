"""The knowledge-base reads other packages make through ``annae.kb.entries``."""

from __future__ import annotations

from sqlalchemy import event

from annae.kb import entries
from annae.store.db import session_scope


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def _entry(s, key: str) -> int:
    return entries.add_entry(s, key=key, question=f"{key}?", answer=f"{key}.").id


def test_find_entry(engine) -> None:
    with session_scope(engine) as s:
        ship = _entry(s, "ship")
    with session_scope(engine) as s:
        found = entries.find_entry(s, ship)
        assert found is not None and found.key == "ship"
        assert entries.find_entry(s, 987_654) is None
        seen = _statements(engine)
        assert entries.find_entry(s, None) is None
        assert entries.find_entry(s, 0) is None
        assert seen == []  # no id: no query


def test_entries_by_id(engine) -> None:
    with session_scope(engine) as s:
        ship, pay = _entry(s, "ship"), _entry(s, "pay")
        _entry(s, "other")
    with session_scope(engine) as s:
        found = entries.entries_by_id(s, [pay, 987_654, ship, pay])
        assert sorted(found) == sorted([ship, pay])
        assert found[ship].key == "ship" and found[pay].answer == "pay."
        seen = _statements(engine)
        assert entries.entries_by_id(s, []) == {}
        assert seen == []  # no ids: no query


def test_examples_with_source_prefix(engine) -> None:
    with session_scope(engine) as s:
        ship = _entry(s, "ship")
        add = entries.add_examples
        first = add(s, ship, ["where is it"], source="conversation:c1/agent:lee")[0].id
        add(s, ship, ["accepted one"], source="conversation:c1/accepted")
        add(s, ship, ["other chat"], source="conversation:c10/agent:kim")
        add(s, None, ["weather?"], source="conversation:c1/agent:kim")
        add(s, ship, ["imported"], source="import:faq.csv:3")
    with session_scope(engine) as s:
        rows = entries.examples_with_source_prefix(s, "conversation:c1/agent:")
        assert [r.text for r in rows] == ["where is it", "weather?"]  # by id
        assert rows[0].id == first and rows[1].entry_id is None
        assert entries.examples_with_source_prefix(s, "conversation:c2/") == []
        every = entries.examples_with_source_prefix(s, "conversation:")
        assert [r.id for r in every] == sorted(r.id for r in every)
        assert len(every) == 4


def test_ids_from_conversations(engine) -> None:
    with session_scope(engine) as s:
        ship = _entry(s, "ship")
        add = entries.add_examples
        a = add(s, ship, ["a"], source="conversation:c1/agent:lee")[0].id
        b = add(s, ship, ["b"], source="conversation:c2/accepted")[0].id
        c = add(s, ship, ["c"], source="import")[0].id
        d = add(s, None, ["d"], source="conversation:c3/agent:kim")[0].id
    with session_scope(engine) as s:
        assert entries.ids_from_conversations(s, {a, c, d, 987_654}) == {a, d}
        assert entries.ids_from_conversations(s, [b]) == {b}
        assert entries.ids_from_conversations(s, [c]) == set()
        seen = _statements(engine)
        assert entries.ids_from_conversations(s, set()) == set()
        assert seen == []  # no ids: no query


def test_revision_summaries_since(engine) -> None:
    with session_scope(engine) as s:
        assert entries.revision_summaries_since(s, 0) == []
        revs = [entries.bump_revision(s, f"change {i}") for i in range(25)]
    with session_scope(engine) as s:
        assert entries.revision_summaries_since(s, revs[-1]) == []
        last = entries.revision_summaries_since(s, revs[21])
        assert last == ["change 22", "change 23", "change 24"]  # oldest first
        capped = entries.revision_summaries_since(s, 0)
        assert capped == [f"change {i}" for i in range(20)]  # at most 20 by default
        two = entries.revision_summaries_since(s, revs[4], limit=2)
        assert two == ["change 5", "change 6"]
