"""The answers customer turns serve: read once per KB revision, never older than the recheck."""

from __future__ import annotations

import time

from sqlalchemy import event, insert, update

from annae.kb import entries
from annae.kb.entries import Answers
from annae.store.db import session_scope
from annae.store.tables.kb import KBEntry, KBRevision


def _statements(engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def test_answers_are_cached_per_revision_and_follow_every_edit(engine):
    with session_scope(engine) as s:
        entry_id = entries.add_entry(s, key="ship", question="Shipping?", answer="Two days.").id
    answers = Answers(recheck_s=0.3)
    seen = _statements(engine)
    with session_scope(engine) as s:
        assert answers.get(s, entry_id) == "Two days."
        first = len(seen)
        assert answers.get(s, entry_id) == "Two days."
        assert answers.get(s, entry_id) == "Two days."
        assert len(seen) == first  # served from the cache: no statement

    # an edit through this process: the next turn serves it
    with session_scope(engine) as s:
        entries.update_entry(s, entry_id, answer="Three days.")
    with session_scope(engine) as s:
        assert answers.get(s, entry_id) == "Three days."

    # an edit by another process (rows written directly, no bump_revision here): served from
    # the cache until the recheck, then the new answer
    with session_scope(engine) as s:
        s.execute(update(KBEntry).where(KBEntry.id == entry_id).values(answer="Four days."))
        s.execute(insert(KBRevision).values(summary="elsewhere", author="other"))
    with session_scope(engine) as s:
        assert answers.get(s, entry_id) == "Three days."
    time.sleep(0.35)
    with session_scope(engine) as s:
        assert answers.get(s, entry_id) == "Four days."

    # switched off, then unknown
    with session_scope(engine) as s:
        entries.update_entry(s, entry_id, active=False)
    with session_scope(engine) as s:
        assert answers.get(s, entry_id) is None
        assert answers.get(s, 987_654) is None


def test_one_answer_cache_per_database(engine, tmp_path):
    from annae.store.db import get_engine, init_db

    other = init_db(get_engine(f"sqlite:///{tmp_path / 'other.db'}"))
    ids = []
    for db, text in ((engine, "From the first."), (other, "From the second.")):
        with session_scope(db) as s:
            ids.append(entries.add_entry(s, key="k", question="Q?", answer=text).id)
    for db, entry_id, text in (
        (engine, ids[0], "From the first."),
        (other, ids[1], "From the second."),
    ):
        with session_scope(db) as s:
            assert entries.answer_for_turn(s, entry_id) == text
