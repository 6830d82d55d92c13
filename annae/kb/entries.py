"""Reading and writing knowledge-base entries; the only code that touches the KB tables."""

from __future__ import annotations

import hashlib
import json
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from annae import errors
from annae.nlu.text import detect_language
from annae.store.db import iso
from annae.store.tables.kb import KBEntry, KBExample, KBRevision

OOS = "oos"


class KBError(errors.AnnaeError, ValueError):
    """A knowledge-base operation that cannot be done (unknown id, duplicate key, empty text)."""

    status, code = 422, "invalid"


class EntryNotFound(errors.NotFound, KBError):
    """No entry or example with that id."""


class EntryExists(errors.Conflict, KBError):
    """An entry with that key exists already."""


@dataclass
class EntryData:
    """An entry as importers produce it and exporters consume it."""

    key: str
    question: str
    answer: str
    language: str = "en"
    tags: list[str] = field(default_factory=list)
    active: bool = True
    examples: list[str] = field(default_factory=list)
    # where each example came from, parallel to ``examples`` (e.g. "import:faq.csv:12")
    sources: list[str] = field(default_factory=list)
    # when the entry was last changed (ISO 8601, UTC): exports carry it, imports compare it
    updated_at: str | None = None


@dataclass
class KBData:
    """A whole knowledge base: entries plus out-of-scope example questions."""

    entries: list[EntryData] = field(default_factory=list)
    oos_examples: list[str] = field(default_factory=list)
    oos_sources: list[str] = field(default_factory=list)
    exported_at: str | None = None  # when an export was written (ISO 8601, UTC)


@dataclass(frozen=True)
class TrainingExample:
    """One labelled question for the classifier; ``label`` is an entry key or ``"oos"``."""

    text: str
    label: str
    example_id: int | None = None


def current_revision(session: Session) -> int:
    """The latest KB revision number (0 for an empty knowledge base)."""
    return session.scalar(_LATEST_REVISION) or 0


_LATEST_REVISION = select(func.max(KBRevision.id))
_changes = 0  # KB changes made by this process (each cached Answers rechecks after one)


def bump_revision(session: Session, summary: str, author: str = "system") -> int:
    """Record a change to the KB and return its revision number."""
    global _changes
    rev = KBRevision(summary=summary[:2000], author=author)
    session.add(rev)
    session.flush()
    _changes += 1
    return rev.id


def revision_summaries_since(session: Session, since: int, *, limit: int = 20) -> list[str]:
    """The summaries of the revisions after ``since``, oldest first, at most ``limit``."""
    stmt = (
        select(KBRevision.summary).where(KBRevision.id > since).order_by(KBRevision.id).limit(limit)
    )
    return list(session.scalars(stmt))


_ANSWER = select(KBEntry.answer, KBEntry.active, _LATEST_REVISION.scalar_subquery()).where(
    KBEntry.id == bindparam("entry_id")
)


class Answers:
    """The answers customer turns serve, read from the database once per KB revision instead of
    once per turn.

    Every change to an entry bumps the KB revision (:func:`bump_revision`). An answer is cached
    with the revision read in the same statement, and served from the cache only while that is
    the latest revision this process knows of. The latest revision is read again at most every
    ``recheck_s`` seconds, and at once after this process changed the KB: an edit made through
    another process is served within ``recheck_s``, one made here at the next turn.
    """

    def __init__(self, recheck_s: float = 1.0) -> None:
        self.recheck_s = recheck_s
        self._latest: int | None = None
        self._checked = -float("inf")
        self._seen_changes = -1
        self._cached: dict[int, tuple[str | None, int]] = {}

    def get(self, session: Session, entry_id: int) -> str | None:
        """The entry's answer, or None when it is inactive or gone."""
        now = time.monotonic()
        if self._seen_changes != _changes or now - self._checked >= self.recheck_s:
            self._seen_changes, self._checked = _changes, now
            self._latest = current_revision(session)
        hit = self._cached.get(entry_id)
        if hit is not None and hit[1] == self._latest:
            return hit[0]
        row = session.execute(_ANSWER, {"entry_id": entry_id}).first()
        if row is None:
            return None
        answer = row.answer if row.active else None
        if len(self._cached) > 10_000:
            self._cached.clear()
        self._cached[entry_id] = (answer, row[2] or 0)
        return answer


_ANSWERS: weakref.WeakKeyDictionary[Any, Answers] = weakref.WeakKeyDictionary()


def answer_for_turn(session: Session, entry_id: int) -> str | None:
    """:meth:`Answers.get` with one cache per database (an engine's pool), made on first use."""
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind)
    cache = _ANSWERS.get(engine)
    if cache is None:
        cache = _ANSWERS.setdefault(engine, Answers())
    return cache.get(session, entry_id)


def tags_of(session: Session, entry_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each entry's tags (the desk routes a hand-off by them); none: no query."""
    if not entry_ids:
        return {}
    rows = session.execute(select(KBEntry.id, KBEntry.tags).where(KBEntry.id.in_(entry_ids)))
    return {entry_id: list(tags or ()) for entry_id, tags in rows.tuples()}


def list_entries(session: Session, *, active_only: bool = False) -> list[KBEntry]:
    stmt = select(KBEntry).options(selectinload(KBEntry.examples)).order_by(KBEntry.id)
    if active_only:
        stmt = stmt.where(KBEntry.active.is_(True))
    return list(session.scalars(stmt))


def get_entry(session: Session, entry_id: int) -> KBEntry:
    entry = session.get(KBEntry, entry_id)
    if entry is None:
        raise EntryNotFound(f"no knowledge-base entry with id {entry_id}")
    return entry


def get_entry_by_key(session: Session, key: str) -> KBEntry | None:
    return session.scalar(select(KBEntry).where(KBEntry.key == key))


def find_entry(session: Session, entry_id: int | None) -> KBEntry | None:
    """The entry with this id, or None when there is none (or no id: no query)."""
    return session.get(KBEntry, entry_id) if entry_id else None


def entries_by_id(session: Session, entry_ids: Sequence[int]) -> dict[int, KBEntry]:
    """The entries with these ids that exist, by id; none: no query."""
    if not entry_ids:
        return {}
    rows = session.scalars(select(KBEntry).where(KBEntry.id.in_(entry_ids)))
    return {entry.id: entry for entry in rows}


def _clean(text: str, what: str) -> str:
    if text is None or not str(text).strip():
        raise KBError(f"{what} is empty")
    return str(text).strip()


def add_entry(
    session: Session,
    *,
    key: str,
    question: str,
    answer: str,
    language: str = "en",
    tags: Sequence[str] = (),
    examples: Sequence[str] = (),
    source: str = "manual",
    author: str = "system",
) -> KBEntry:
    """Create an entry (its question is also its first example) and bump the revision."""
    key = _clean(key, "key")
    if key == OOS:
        raise KBError(f"'{OOS}' is reserved for out-of-scope examples")
    if get_entry_by_key(session, key) is not None:
        raise EntryExists(f"an entry with key {key!r} already exists")
    entry = KBEntry(
        key=key,
        question=_clean(question, "question"),
        answer=_clean(answer, "answer"),
        language=language,
        tags=list(tags),
        active=True,
    )
    session.add(entry)
    session.flush()
    texts = [entry.question, *examples]
    _add_examples(session, entry.id, texts, language, [source] * len(texts))
    bump_revision(session, f"added entry {key}", author)
    return entry


def update_entry(session: Session, entry_id: int, *, author: str = "system", **changes) -> KBEntry:
    """Change an entry's question, answer, language, tags or active flag."""
    entry = get_entry(session, entry_id)
    allowed = {"question", "answer", "language", "tags", "active"}
    unknown = set(changes) - allowed
    if unknown:
        raise KBError(f"cannot change {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        if value is None:
            continue
        if name in {"question", "answer"}:
            value = _clean(value, name)
        setattr(entry, name, value)
    bump_revision(session, f"updated entry {entry.key}", author)
    return entry


def add_examples(
    session: Session,
    entry_id: int | None,
    texts: Iterable[str],
    *,
    source: str = "manual",
    language: str | None = None,
    author: str = "system",
) -> list[KBExample]:
    """Add example questions to an entry (``entry_id=None`` for out-of-scope examples)."""
    if entry_id is not None:
        entry = get_entry(session, entry_id)  # an unknown id is an error, language given or not
        language = language or entry.language
    texts = [_clean(t, "example question") for t in texts]
    added = _add_examples(session, entry_id, texts, language or "en", [source] * len(texts))
    bump_revision(session, f"added {len(added)} example(s)", author)
    return added


def _add_examples(session, entry_id, texts, language, sources) -> list[KBExample]:
    rows = [
        KBExample(entry_id=entry_id, text=text, language=language, source=src[:500])
        for text, src in zip(texts, sources, strict=True)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def delete_example(session: Session, example_id: int, *, author: str = "system") -> None:
    row = session.get(KBExample, example_id)
    if row is None:
        raise EntryNotFound(f"no example with id {example_id}")
    session.delete(row)
    bump_revision(session, f"deleted example {example_id}", author)


CONVERSATION_SOURCE = "conversation:"
"""An example labelled from a conversation has ``source`` ``conversation:<id>`` (optionally
followed by ``/...``): erasing the conversation's customer deletes it (``annae.privacy.rights``)."""


def conversation_of(source: str) -> str | None:
    """The conversation id an example ``source`` points at, if any."""
    if not source.startswith(CONVERSATION_SOURCE):
        return None
    return source[len(CONVERSATION_SOURCE) :].split("/", 1)[0] or None


def derived_examples(session: Session, conversation_ids: Iterable[str]) -> list[dict]:
    """The examples derived from these conversations (by their ``source``), JSON-ready."""
    wanted = set(conversation_ids)
    if not wanted:
        return []
    rows = session.scalars(
        select(KBExample).where(KBExample.source.startswith(CONVERSATION_SOURCE))
    )
    return [
        {"id": ex.id, "entry_id": ex.entry_id, "text": ex.text, "language": ex.language,
         "source": ex.source}
        for ex in rows
        if conversation_of(ex.source) in wanted
    ]  # fmt: skip


def examples_with_source_prefix(session: Session, prefix: str) -> list[KBExample]:
    """The examples whose ``source`` is LIKE ``prefix`` + ``%``, oldest (lowest id) first."""
    stmt = select(KBExample).where(KBExample.source.like(f"{prefix}%")).order_by(KBExample.id)
    return list(session.scalars(stmt))


def ids_from_conversations(session: Session, example_ids: Iterable[int]) -> set[int]:
    """Which of these example ids were made from a conversation (by ``source``); none: no query."""
    among = sorted(example_ids)
    if not among:
        return set()
    stmt = select(KBExample.id).where(
        KBExample.id.in_(among), KBExample.source.like(f"{CONVERSATION_SOURCE}%")
    )
    return set(session.scalars(stmt))


def delete_derived_examples(
    session: Session, conversation_ids: Iterable[str], *, author: str
) -> list[int]:
    """Delete the examples derived from these conversations (the revision moves on); their ids."""
    ids = [ex["id"] for ex in derived_examples(session, conversation_ids)]
    for example_id in ids:
        delete_example(session, example_id, author=author)
    return ids


def load_kb(
    session: Session,
    data: KBData,
    *,
    replace: bool = False,
    author: str = "import",
    summary: str = "import",
) -> int:
    """Write a parsed knowledge base in the caller's transaction; returns the new revision.

    Entries whose key exists are updated (examples appended, duplicates skipped);
    with ``replace=True`` everything not in ``data`` is deleted first.
    """
    if replace:
        for example in session.scalars(select(KBExample)):
            session.delete(example)
        for old in session.scalars(select(KBEntry)):
            session.delete(old)
        session.flush()
    for item in data.entries:
        entry = get_entry_by_key(session, item.key)
        existing = {e.text for e in entry.examples} if entry is not None else set()
        if entry is None:
            entry = KBEntry(key=item.key)
            session.add(entry)
        entry.question, entry.answer = item.question, item.answer
        entry.language, entry.tags, entry.active = item.language, list(item.tags), item.active
        session.flush()  # a new entry gets its id
        sources = item.sources or ["import"] * len(item.examples)
        new = [(t, s) for t, s in zip(item.examples, sources, strict=True) if t not in existing]
        if item.question not in existing and item.question not in {t for t, _ in new}:
            new.insert(0, (item.question, sources[0] if sources else "import"))
        if new:
            _add_examples(
                session, entry.id, [t for t, _ in new], item.language, [s for _, s in new]
            )
    if data.oos_examples:
        have = set(session.scalars(select(KBExample.text).where(KBExample.entry_id.is_(None))))
        srcs = data.oos_sources or ["import"] * len(data.oos_examples)
        for text, src in zip(data.oos_examples, srcs, strict=True):
            if text not in have:
                _add_examples(session, None, [text], detect_language(text), [src])
    return bump_revision(session, summary, author)


def dump_kb(session: Session, *, active_only: bool = False) -> KBData:
    """The stored knowledge base as plain data (what exporters write)."""
    data = KBData()
    for entry in list_entries(session, active_only=active_only):
        data.entries.append(
            EntryData(
                key=entry.key,
                question=entry.question,
                answer=entry.answer,
                language=entry.language,
                tags=list(entry.tags or []),
                active=entry.active,
                examples=[e.text for e in entry.examples],
                sources=[e.source for e in entry.examples],
                updated_at=iso(entry.updated_at),
            )
        )
    oos = session.scalars(
        select(KBExample).where(KBExample.entry_id.is_(None)).order_by(KBExample.id)
    )
    for row in oos:
        data.oos_examples.append(row.text)
        data.oos_sources.append(row.source)
    return data


def training_examples(session: Session) -> list[TrainingExample]:
    """Every example of every active entry, plus the out-of-scope examples."""
    stmt = (
        select(KBExample.id, KBExample.text, KBEntry.key, KBEntry.active)
        .join(KBEntry, KBExample.entry_id == KBEntry.id, isouter=True)
        .order_by(KBExample.id)
    )
    out = []
    for ex_id, text, key, active in session.execute(stmt):
        if key is None:
            out.append(TrainingExample(text, OOS, ex_id))
        elif active:
            out.append(TrainingExample(text, key, ex_id))
    return out


def answers(session: Session) -> dict[str, dict]:
    """Entry key → {id, question, answer, language} for active entries (what the engine answers with)."""
    return {
        e.key: {"id": e.id, "question": e.question, "answer": e.answer, "language": e.language}
        for e in list_entries(session, active_only=True)
    }


def stale_anchors(session: Session, model_answers: dict[str, dict]) -> list[str]:
    """Keys of entries whose answer text changed since the model used it as an anchor text
    (what is served is always the current text; the next retrain learns the new anchors)."""
    current = answers(session)
    return sorted(
        key
        for key, info in model_answers.items()
        if key in current and (info or {}).get("answer") != current[key]["answer"]
    )


def data_hash(examples: Sequence[TrainingExample]) -> str:
    """A stable hash of training data (ids, texts and labels)."""
    h = hashlib.sha256()
    for ex in examples:
        h.update(json.dumps([ex.example_id, ex.text, ex.label], ensure_ascii=False).encode())
    return h.hexdigest()
