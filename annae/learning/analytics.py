"""What the bot achieves, computed from stored conversations (definitions in docs/metrics.md).

A conversation is counted in a period by its creation time (UTC) and only if the customer wrote
at least one message in it. All rates are over those conversations.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.dialogue import history
from annae.kb import entries
from annae.store.db import aware
from annae.store.tables.learning import AnswerRating, ConversationLabel

if TYPE_CHECKING:
    from annae.store.tables.service import Message

T = TypeVar("T", AnswerRating, ConversationLabel)
DAILY_COUNTS = ("conversations", "contained", "handed_off")


@dataclass
class Filters:
    """Conversations created in ``[start, end)`` (UTC dates, end exclusive) in ``language``."""

    start: date | None = None
    end: date | None = None
    language: str | None = None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        def at(d: date | None) -> datetime | None:
            return datetime(d.year, d.month, d.day, tzinfo=UTC) if d else None

        return at(self.start), at(self.end)


@dataclass
class ConvFacts:
    """What happened in one conversation, derived from its messages."""

    id: str
    day: date
    language: str | None
    answers: list[int | None] = field(default_factory=list)  # entry ids of bot answers
    answer_ids: list[int] = field(default_factory=list)
    handoff_reason: str | None = None
    handoff_at: datetime | None = None
    first_agent_reply_at: datetime | None = None
    customer_messages: int = 0

    @property
    def handed_off(self) -> bool:
        return self.handoff_reason is not None


def _handoff_reason(prev_customer: Message | None) -> str:
    d = (prev_customer.decision or {}) if prev_customer is not None else {}
    if d.get("handoff_requested"):
        return "customer_request"
    if d.get("type") == "handoff":
        return d.get("reason") or "low_confidence"
    if prev_customer is not None and "model_version" in d and d.get("model_version") is None:
        return "no_model"
    return "other"


def facts(session: Session, filters: Filters) -> list[ConvFacts]:
    """One :class:`ConvFacts` per counted conversation (with at least one customer message)."""
    start, end = filters.bounds()
    convs = {c.id: c for c in history.created_between(session, start, end)}
    if not convs:
        return []
    out: dict[str, ConvFacts] = {}
    msgs = history.messages_of(session, list(convs))
    by_conv: dict[str, list[Message]] = defaultdict(list)
    for m in msgs:
        by_conv[m.conversation_id].append(m)
    for cid, conv in convs.items():
        rows = by_conv.get(cid, [])
        decided = [(m.decision or {}).get("language") for m in rows]
        language = conv.language or next(filter(None, decided), None)
        if filters.language and language != filters.language:
            continue
        f = ConvFacts(cid, aware(conv.created_at).date(), language)
        last_customer = None
        for m in rows:
            if m.sender == "customer":
                f.customer_messages += 1
                last_customer = m
            elif m.sender == "bot" and m.type == "answer":
                f.answers.append(m.entry_id)
                f.answer_ids.append(m.id)
            elif m.sender == "bot" and m.type == "handoff" and f.handoff_reason is None:
                f.handoff_reason = _handoff_reason(last_customer)
                f.handoff_at = aware(m.created_at)
            elif m.sender == "system" and m.text == "assigned" and f.handoff_reason is None:
                f.handoff_reason = "agent_took_over"
                f.handoff_at = aware(m.created_at)
            elif m.sender == "agent" and f.first_agent_reply_at is None:
                if f.handoff_reason is None:
                    f.handoff_reason, f.handoff_at = "agent_took_over", aware(m.created_at)
                f.first_agent_reply_at = aware(m.created_at)
        if f.customer_messages:
            out[cid] = f
    return list(out.values())


def _of_conversations(session: Session, table: type[T], conv_ids: list[str]) -> list[T]:
    """The rows of ``table`` (ratings or labels) in these conversations; none: no query."""
    if not conv_ids:
        return []
    return list(session.scalars(select(table).where(table.conversation_id.in_(conv_ids))))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def summary(session: Session, filters: Filters | None = None) -> dict:
    """Every dashboard number and table for ``filters`` (see docs/metrics.md)."""
    filters = filters or Filters()
    rows = facts(session, filters)
    ids = [f.id for f in rows]
    answer_ids = {a for f in rows for a in f.answer_ids}
    ratings = _of_conversations(session, AnswerRating, ids)
    unhelpful_convs = {r.conversation_id for r in ratings if not r.helpful}
    n = len(rows)
    handed = [f for f in rows if f.handed_off]
    contained = [f for f in rows if f.answers and not f.handed_off and f.id not in unhelpful_convs]
    other = [f for f in rows if f not in contained and not f.handed_off]

    waits = [
        (f.first_agent_reply_at - f.handoff_at).total_seconds()
        for f in handed
        if f.first_agent_reply_at is not None and f.handoff_at is not None
    ]
    helpful = sum(1 for r in ratings if r.helpful and r.message_id in answer_ids)
    unhelpful = sum(1 for r in ratings if not r.helpful and r.message_id in answer_ids)

    precision = _label_precision(session, ids)
    keys: dict[int | None, str] = {e.id: e.key for e in entries.list_entries(session)}
    per_entry: dict[int | None, Counter] = defaultdict(Counter)
    for f in rows:
        for entry_id in f.answers:
            per_entry[entry_id]["answers"] += 1
    for r in ratings:
        per_entry[r.entry_id]["helpful" if r.helpful else "not_helpful"] += 1
    top_entries: list[dict[str, Any]] = sorted(
        (
            {
                "entry_id": eid,
                "key": keys.get(eid, "(deleted)" if eid else "(none)"),
                "answers": c["answers"],
                "helpful": c["helpful"],
                "not_helpful": c["not_helpful"],
            }
            for eid, c in per_entry.items()
            if c["answers"]
        ),
        key=lambda d: (-d["answers"], d["entry_id"] or 0),
    )

    daily: dict[date, Counter] = defaultdict(Counter)
    for f in rows:
        daily[f.day]["conversations"] += 1
        daily[f.day]["contained"] += f in contained
        daily[f.day]["handed_off"] += f.handed_off
    days = _days(filters, rows)
    reasons = Counter(f.handoff_reason for f in handed)
    return {
        "filters": {
            "start": filters.start.isoformat() if filters.start else None,
            "end": filters.end.isoformat() if filters.end else None,
            "language": filters.language,
        },
        "conversations": n,
        "contained": len(contained),
        "containment_rate": _rate(len(contained), n),
        "handed_off": len(handed),
        "handoff_rate": _rate(len(handed), n),
        "other": len(other),
        "other_rate": _rate(len(other), n),
        "median_first_reply_seconds": round(statistics.median(waits), 1) if waits else None,
        "first_reply_samples": len(waits),
        "ratings": {
            "helpful": helpful,
            "not_helpful": unhelpful,
            "helpful_share": _rate(helpful, helpful + unhelpful),
        },
        **precision,
        "daily": [{"day": d.isoformat(), **{k: daily[d][k] for k in DAILY_COUNTS}} for d in days],
        "handoff_reasons": [
            {"reason": r, "conversations": c, "share": _rate(c, len(handed))}
            for r, c in reasons.most_common()
        ],
        "top_entries": top_entries[:20],
    }


def _days(filters: Filters, rows: list[ConvFacts]) -> list[date]:
    """Every day of the period (zero days included), at most 366."""
    if not rows and not (filters.start and filters.end):
        return []
    first = filters.start or min(f.day for f in rows)
    last = (filters.end - timedelta(days=1)) if filters.end else max(f.day for f in rows)
    return [first + timedelta(days=i) for i in range(min((last - first).days + 1, 366))]


def _label_precision(session: Session, conv_ids: list[str]) -> dict:
    """Answered precision and top-guess agreement, estimated from agents' labels."""
    labels = _of_conversations(session, ConversationLabel, conv_ids)
    answered = correct = guesses = agree = 0
    for label in labels:
        if label.message_id is not None:
            nxt = history.next_bot_message(session, label.conversation_id, label.message_id)
            if nxt is not None and nxt.type == "answer":
                answered += 1
                correct += label.kind == "entry" and nxt.entry_id == label.entry_id
        if label.kind == "entry" and label.bot_entry_id is not None:
            guesses += 1
            agree += label.bot_entry_id == label.entry_id
    return {
        "labelled": len(labels),
        "labelled_answered": answered,
        "answered_precision_labels": _rate(correct, answered),
        "top_guess_agreement": _rate(agree, guesses),
        "labels_by_kind": dict(Counter(lab.kind for lab in labels)),
    }


TABLES = ("daily", "handoff_reasons", "top_entries", "summary")


def to_csv(data: dict, table: str) -> str:
    """One dashboard table as CSV (``summary`` is the headline numbers as name,value rows)."""
    if table not in TABLES and table != "clusters":
        raise ValueError(f"unknown table {table!r}; one of {', '.join((*TABLES, 'clusters'))}")
    buf = io.StringIO()
    writer = csv.writer(buf)
    if table == "summary":
        writer.writerow(["metric", "value"])
        for key, value in data.items():
            if isinstance(value, dict) and key == "ratings":
                for k, v in value.items():
                    writer.writerow([f"ratings.{k}", v])
            elif not isinstance(value, (list, dict)):
                writer.writerow([key, "" if value is None else value])
        return buf.getvalue()
    rows = data.get(table) or []
    if not rows:
        writer.writerow(["(no rows)"])
        return buf.getvalue()
    headers = list(rows[0].keys())
    writer.writerow(headers)
    writer.writerows(
        ["; ".join(map(str, v)) if isinstance(v, list) else v for v in (row[h] for h in headers)]
        for row in rows
    )
    return buf.getvalue()
