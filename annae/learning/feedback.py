"""Feedback becomes training data: agents' labels of handed-off conversations, customers' ratings.

Functions work in the caller's session (one transaction per request). Examples made from a
conversation follow the privacy convention ``source = "conversation:<id>/…"`` so that erasing the
customer finds and deletes them, and are only made for customers with ``training`` consent.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from annae import errors
from annae.dialogue import conversations, history
from annae.kb import entries
from annae.kb.entries import KBError
from annae.settings import Settings, get_settings
from annae.store.db import aware, utcnow
from annae.store.tables.learning import AnswerRating, ConversationLabel

if TYPE_CHECKING:
    from annae.store.tables.kb import KBExample
    from annae.store.tables.service import Conversation, Message

KINDS = ("entry", "new_entry", "not_faq")
# hand-off reasons whose question is a topic the bot could learn (not "I want a person")
LEARNABLE_REASONS = (None, "low_confidence", "frustration")


class LearningError(errors.AnnaeError):
    """A learning operation that cannot be done; ``status``/``code`` map to the HTTP error."""

    status, code = 400, "bad_request"


class NotFound(errors.NotFound, LearningError):
    pass


class Forbidden(errors.Forbidden, LearningError):
    pass


class Conflict(errors.Conflict, LearningError):
    pass


class Invalid(errors.Invalid, LearningError):
    pass


def _conversation(session: Session, conv_id: str) -> Conversation:
    try:
        return conversations.get(session, conv_id)
    except conversations.NotFound as exc:  # learning's own error (same message, same status)
        raise NotFound(str(exc)) from exc


def question_messages(session: Session, conv_id: str) -> list[Message]:
    """The customer's question(s) that led to the hand-off, oldest first.

    Every customer text between the bot's last answer before the hand-off (or a reopening)
    and the hand-off itself: a question the bot only clarified counts too. What the customer wrote
    after the hand-off (an order number, "thanks!") is talk with the agent, never a question
    to learn. Without a hand-off message (an agent took the conversation over), the messages
    before the first agent reply count instead. When nothing is between (the bot answered,
    then the customer pressed "talk to a person"), the last question before it counts.
    """
    rows = history.messages_of(session, [conv_id], exclude_sender="agent")
    # the bot's latest hand-off message: the moment people took over
    handoff = conversations.last_bot_message(session, conv_id, "handoff")
    end = history.first_message_id(session, conv_id, "agent") if handoff is None else handoff.id
    before = [m for m in rows if end is None or m.id < end]
    start = max(
        (m.id for m in before if (m.sender, m.type) in (("bot", "answer"), ("system", "system"))),
        default=0,
    )
    out = [m for m in before if m.id > start and _is_question(m)]
    if not out:
        out = [m for m in before if _is_question(m)][-1:]
    return out


def _is_question(m: Message) -> bool:
    """A customer's text to the bot (not a press of "talk to a person")."""
    return (
        m.sender == "customer"
        and m.type == "text"
        and not (m.decision or {}).get("handoff_requested")
    )


def bot_questions(session: Session, conv_id: str) -> list[Message]:
    """Every customer text written to the bot (not to an agent after a hand-off), oldest first:
    what a label may turn into examples."""
    out, silent = [], False
    for m in history.messages_of(session, [conv_id]):
        if m.sender == "bot" and m.type == "handoff":
            silent = True
        elif m.sender == "system" and m.type == "system" and m.text == "reopened":
            silent = False
        elif m.sender == "agent":
            silent = True
        elif not silent and _is_question(m):
            out.append(m)
    return out


def label_form(session: Session, conv_id: str, settings: Settings | None = None) -> dict:
    """What the label dialog shows: the question(s) that led to the hand-off (the last one
    checked), the bot's guesses with their confidence, and the entry to pre-select: the bot's
    best one only when it is credible (confidence ≥ ``label_preselect_min``), otherwise none."""
    settings = settings or get_settings()
    conv = _conversation(session, conv_id)
    questions = question_messages(session, conv.id)
    decision = (questions[-1].decision or {}) if questions else {}
    guesses = [
        {k: c.get(k) for k in ("entry_id", "key", "question", "confidence")}
        for c in decision.get("candidates") or []
        if c.get("entry_id") is not None
    ]
    top = guesses[0] if guesses else None
    credible = top is not None and (top["confidence"] or 0) >= settings.label_preselect_min
    last = questions[-1] if questions else None
    return {
        "label": get_label(session, conv.id),
        "question": {"message_id": last.id, "text": last.text} if last else None,
        "questions": [
            {"message_id": m.id, "text": m.text, "selected": m is last} for m in questions
        ],
        "guesses": guesses,
        "preselect": top["entry_id"] if top is not None and credible else None,
        "agent_reply": last_agent_reply(session, conv.id),
        "language": conv.language or decision.get("language"),
        "training_allowed": training_allowed(session, conv, settings)[0],
    }


def last_agent_reply(session: Session, conv_id: str) -> str | None:
    """The text of the agent's latest reply in the conversation, if any."""
    return history.last_text(session, conv_id, "agent")


def training_allowed(
    session: Session, conv: Conversation, settings: Settings | None = None
) -> tuple[bool, str | None]:
    """Whether this conversation's words may become training data, and why not."""
    settings = settings or get_settings()
    if conv.customer_id is None:
        if settings.learn_from_anonymous:
            return True, None
        return False, "anonymous conversation (ANNAE_LEARN_FROM_ANONYMOUS is off)"
    try:
        from annae.privacy import consent
    except ImportError:  # pragma: no cover - privacy module not installed
        return True, None
    if consent.has_consent(session, conv.customer_id, "training"):
        return True, None
    return False, "the customer has not consented to training"


def source_for(conv_id: str, agent: str) -> str:
    return f"conversation:{conv_id}/agent:{agent}"


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    words = re.findall(r"\w+", text)[:6]
    return "_".join(words)[:60] or "entry"


def unique_key(session: Session, text: str) -> str:
    """A free entry key made from ``text`` (``shipping_time``, ``shipping_time_2``, …)."""
    base, n = _slug(text), 1
    key = base
    while entries.get_entry_by_key(session, key) is not None:
        n += 1
        key = f"{base}_{n}"
    return key


def _usable_entry(session: Session, entry_id: int):
    try:
        entry = entries.get_entry(session, entry_id)
    except KBError as exc:
        raise Invalid(f"entry {entry_id} does not exist (deleted?)") from exc
    if not entry.active:
        raise Invalid(f"entry {entry_id} ({entry.key}) is disabled; enable it or pick another")
    return entry


def _add_example(session: Session, entry_id: int, text: str, source: str, agent: str):
    entry = entries.get_entry(session, entry_id)
    for ex in entry.examples:
        if ex.text.strip().lower() == text.strip().lower():
            return None  # already an example: nothing to learn
    return entries.add_examples(session, entry_id, [text], source=source, author=agent)[0]


def label_examples(session: Session, conv_id: str) -> list[KBExample]:
    """The examples agents' labels made from this conversation's questions."""
    return entries.examples_with_source_prefix(session, f"conversation:{conv_id}/agent:")


def _undo(session: Session, label: ConversationLabel, agent: str) -> None:
    """Delete every example the label made (already deleted ones are skipped)."""
    for example in label_examples(session, label.conversation_id):
        try:
            entries.delete_example(session, example.id, author=agent)
        except KBError:  # pragma: no cover - deleted meanwhile
            pass


def label_dict(label: ConversationLabel, **extra) -> dict:
    return {
        "conversation_id": label.conversation_id,
        "message_id": label.message_id,
        "kind": label.kind,
        "entry_id": label.entry_id,
        "example_id": label.example_id,
        "bot_entry_id": label.bot_entry_id,
        "agent": label.agent,
        "created_at": label.created_at.isoformat() if label.created_at else None,
        **extra,
    }


def label_conversation(
    session: Session,
    conv_id: str,
    *,
    kind: str,
    agent: str,
    entry_id: int | None = None,
    new_entry: dict | None = None,
    message_id: int | None = None,
    message_ids: list[int] | None = None,
    replace: bool = False,
    settings: Settings | None = None,
) -> dict:
    """Record what a handed-off conversation was about; the question becomes an example.

    ``kind`` is ``entry`` (with ``entry_id``), ``new_entry`` (``new_entry`` = ``{answer,
    question?, key?, language?}``; the answer defaults to the agent's last reply) or ``not_faq``.
    ``message_ids`` (or one ``message_id``) picks which of the customer's questions to the bot
    become examples; by default the one the bot handed off (:func:`question_messages`). What the
    customer wrote to the agent after the hand-off (an order number, "thanks!") is refused.
    A second label is a :class:`Conflict` unless ``replace`` (the old examples are removed).
    """
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    conv = _conversation(session, conv_id)
    existing = _label_row(session, conv.id, lock=True)
    if existing is not None and not replace:
        raise Conflict(
            f"conversation {conv.id} is already labelled ({existing.kind}) by {existing.agent}; "
            "send replace: true to change it"
        )
    candidates = question_messages(session, conv.id)
    wanted = list(message_ids or []) + ([message_id] if message_id is not None else [])
    if wanted:
        by_id = {m.id: m for m in [*bot_questions(session, conv.id), *candidates]}
        wrong = [i for i in wanted if i not in by_id]
        if wrong:
            raise Invalid(
                f"message {wrong[0]} is not a question the customer asked the bot (what they "
                "wrote to an agent after the hand-off is never labelled); the questions that "
                f"led to the hand-off are {', '.join(str(m.id) for m in candidates) or 'none'}"
            )
        questions = [by_id[i] for i in sorted(set(wanted))]
    else:
        questions = candidates[-1:]
    question = questions[-1] if questions else None
    if question is None and kind != "not_faq":
        raise Invalid("this conversation has no customer question to learn from")

    if kind == "entry":
        if entry_id is None:
            raise Invalid("kind 'entry' needs an entry_id")
        _usable_entry(session, entry_id)
    elif entry_id is not None:
        raise Invalid(f"entry_id is only for kind 'entry', not {kind!r}")

    allowed, why_not = training_allowed(session, conv, settings)
    if existing is not None:
        _undo(session, existing, agent)
    if kind == "new_entry":
        spec = dict(new_entry or {})
        answer = (spec.get("answer") or last_agent_reply(session, conv.id) or "").strip()
        if not answer:
            raise Invalid("a new entry needs an answer (the agent has not replied yet)")
        title = (spec.get("question") or (question.text if question else "")).strip()
        if not title:
            raise Invalid("a new entry needs a question")
        verbatim = any(title == q.text.strip() for q in questions)
        if verbatim and not allowed:
            raise Invalid(
                f"write the entry's question in your own words: {why_not}, "
                "so their message cannot become part of the knowledge base"
            )
        key = (spec.get("key") or "").strip() or unique_key(session, title)
        try:
            entry = entries.add_entry(
                session,
                key=key,
                question=title,
                answer=answer,
                language=spec.get("language") or conv.language or "en",
                # the customer's own words keep the conversation source (erasure finds them)
                source=source_for(conv.id, agent) if verbatim else f"agent:{agent}",
                author=agent,
            )
        except KBError as exc:
            status = Conflict if "already exists" in str(exc) else Invalid
            raise status(str(exc)) from exc
        entry_id = entry.id
    examples = []
    if kind != "not_faq" and allowed:
        assert entry_id is not None  # kind entry has one (checked), new_entry made one
        for q in questions:
            if kind == "new_entry" and q.text.strip() == title:
                continue  # already the entry's question (its first example)
            examples.append(
                _add_example(session, entry_id, q.text, source_for(conv.id, agent), agent)
            )
    examples = [e for e in examples if e is not None]
    example = examples[0] if examples else None

    now = utcnow()
    if existing is None:
        label = ConversationLabel(conversation_id=conv.id, created_at=now, kind=kind, agent=agent)
        session.add(label)
    else:
        label = existing
    label.kind, label.agent, label.updated_at = kind, agent, now
    label.entry_id = entry_id
    label.message_id = question.id if question is not None else None
    label.example_id = example.id if example is not None else None
    label.bot_entry_id = _bot_guess(question)
    cid = conv.id
    try:
        session.flush()
    except IntegrityError as exc:  # another agent labelled it at the same moment
        raise Conflict(f"conversation {cid} was labelled by someone else just now") from exc
    return label_dict(
        label,
        example_added=example is not None,
        examples_added=len(examples),
        message_ids=[q.id for q in questions],
        not_added_because=None if example is not None or kind == "not_faq" else why_not,
    )


def undo_label(session: Session, conv_id: str, user: str, *, is_admin: bool = True) -> dict:
    """Remove a conversation's label and every example it made (the KB revision moves on).
    Agents undo their own labels; admins anyone's."""
    conv = _conversation(session, conv_id)
    label = _label_row(session, conv.id, lock=True)
    if label is None:
        raise NotFound(f"conversation {conv.id} has no label")
    if not is_admin and label.agent != user:
        raise Forbidden(f"the label is {label.agent}'s; only they or an admin can undo it")
    removed = [e.text for e in label_examples(session, conv.id)]
    out = label_dict(label, examples_removed=removed, undone_by=user)
    _undo(session, label, user)
    session.delete(label)
    session.flush()
    return out


def recent_labels(session: Session, *, limit: int = 100) -> list[dict]:
    """Agents' labels, newest first, with the entry and the examples each one made."""
    rows = session.scalars(
        select(ConversationLabel)
        .order_by(ConversationLabel.created_at.desc(), ConversationLabel.id.desc())
        .limit(limit)
    )
    out = []
    for label in rows:
        entry = entries.find_entry(session, label.entry_id)
        question = history.get_message(session, label.message_id) if label.message_id else None
        out.append(
            label_dict(
                label,
                entry_key=entry.key if entry else None,
                question=question.text if question else None,
                examples=[e.text for e in label_examples(session, label.conversation_id)],
            )
        )
    return out


def _bot_guess(question: Message | None) -> int | None:
    """The entry the bot thought best for the question (its top candidate)."""
    decision = (question.decision or {}) if question is not None else {}
    cands = decision.get("candidates") or []
    return decision.get("entry_id") or (cands[0].get("entry_id") if cands else None)


def _label_row(session: Session, conv_id: str, *, lock: bool = False) -> ConversationLabel | None:
    stmt = select(ConversationLabel).where(ConversationLabel.conversation_id == conv_id)
    return session.scalar(stmt.with_for_update() if lock else stmt)


def get_label(session: Session, conv_id: str) -> dict | None:
    label = _label_row(session, conv_id)
    return label_dict(label) if label else None


# --- ratings --------------------------------------------------------------------------------


def rate_answer(
    session: Session,
    conv_id: str,
    message_id: int,
    helpful: bool,
    *,
    settings: Settings | None = None,
) -> dict:
    """Store the customer's rating of a bot answer (rating again changes it)."""
    settings = settings or get_settings()
    conv = _conversation(session, conv_id)
    msg = history.get_message(session, message_id)
    if msg is None or msg.conversation_id != conv.id:
        raise NotFound(f"no message {message_id} in conversation {conv.id}")
    if msg.sender != "bot" or msg.type != "answer":
        raise Invalid("only the bot's answers can be rated")
    rating = session.scalar(
        select(AnswerRating).where(AnswerRating.message_id == msg.id).with_for_update()
    )
    if rating is None:
        rating = AnswerRating(conversation_id=conv.id, message_id=msg.id, entry_id=msg.entry_id)
        session.add(rating)
    rating.helpful = bool(helpful)
    rating.created_at = utcnow()
    rating.reviewed_by, rating.reviewed_at = None, None
    try:
        session.flush()
    except IntegrityError as exc:  # two ratings of the same answer at once
        raise Conflict("this answer was rated at the same moment; try again") from exc
    weak = None
    if helpful and settings.learn_from_accepted and msg.entry_id is not None:
        allowed, _ = training_allowed(session, conv, settings)
        question = history.customer_message_before(session, msg)
        entry = entries.find_entry(session, msg.entry_id)
        if allowed and question is not None and question.type == "text" and entry and entry.active:
            weak = _add_example(
                session, msg.entry_id, question.text, f"conversation:{conv.id}/accepted", "customer"
            )
    return {
        "message_id": msg.id,
        "entry_id": msg.entry_id,
        "helpful": rating.helpful,
        "weak_example_added": weak is not None,
    }


def review_list(
    session: Session, *, include_reviewed: bool = False, limit: int = 200
) -> list[dict]:
    """Answers customers rated not helpful, newest first (only answers still stored: erasing
    a customer deletes their messages, not the ratings)."""
    stmt = (
        select(AnswerRating)
        .where(
            AnswerRating.helpful.is_(False),
            AnswerRating.message_id.in_(history.stored_message_ids()),
        )
        .order_by(AnswerRating.created_at.desc(), AnswerRating.id.desc())
        .limit(limit)
    )
    if not include_reviewed:
        stmt = stmt.where(AnswerRating.reviewed_at.is_(None))
    ratings = list(session.scalars(stmt))
    answers = history.messages_with_ids(session, [r.message_id for r in ratings])
    by_id = {m.id: m for m in answers}
    out = []
    for rating in ratings:
        msg = by_id.get(rating.message_id)
        if msg is None:  # pragma: no cover - erased between the two reads
            continue
        question = history.customer_message_before(session, msg)
        entry = entries.find_entry(session, rating.entry_id)
        out.append(
            {
                "rating_id": rating.id,
                "conversation_id": rating.conversation_id,
                "message_id": msg.id,
                "entry_id": rating.entry_id,
                "entry_key": entry.key if entry else None,
                "question": question.text if question else None,
                "answer": msg.text,
                "rated_at": rating.created_at.isoformat(),
                "reviewed_by": rating.reviewed_by,
                "reviewed": bool(rating.reviewed_at),
            }
        )
    return out


def mark_reviewed(session: Session, rating_id: int, user: str) -> None:
    rating = session.get(AnswerRating, rating_id)
    if rating is None:
        raise NotFound(f"no rating with id {rating_id}")
    rating.reviewed_by, rating.reviewed_at = user, utcnow()


# --- unanswered questions -------------------------------------------------------------------


@dataclass(frozen=True)
class Unanswered:
    """A customer question the knowledge base did not answer."""

    message_id: int
    conversation_id: str
    text: str
    language: str | None
    created_at: datetime
    why: str  # "handoff" | "unhelpful"

    @classmethod
    def of(cls, msg: Message, language: str | None, why: str) -> Unanswered:
        return cls(msg.id, msg.conversation_id, msg.text, language, msg.created_at, why)


def unanswered_questions(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    language: str | None = None,
) -> list[Unanswered]:
    """Questions handed off (for lack of an answer) or whose answer was rated not helpful,
    in conversations no agent has labelled; oldest first."""
    labelled = select(ConversationLabel.conversation_id)
    texts = history.customer_texts(session, since=since, until=until, skip_conversations=labelled)
    out: dict[int, Unanswered] = {}
    for msg, conv_lang in texts:
        d = msg.decision or {}
        lang = d.get("language") or conv_lang
        if language and lang != language:
            continue
        if d.get("type") == "handoff" and d.get("reason") in LEARNABLE_REASONS:
            out[msg.id] = Unanswered.of(msg, lang, "handoff")
    bad = select(AnswerRating.message_id).where(AnswerRating.helpful.is_(False))
    answers = history.messages_with_ids(session, bad, skip_conversations=labelled)
    for answer in answers:
        question = history.customer_message_before(session, answer)
        if question is None or question.type != "text" or question.id in out:
            continue
        asked = aware(question.created_at)
        if (since is not None and asked < since) or (until is not None and asked >= until):
            continue
        lang = (question.decision or {}).get("language")
        if language and lang != language:
            continue
        out[question.id] = Unanswered.of(question, lang, "unhelpful")
    return sorted(out.values(), key=lambda u: u.message_id)
