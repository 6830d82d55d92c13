"""Conversations: the bot → waiting → agent → resolved state machine, messages and customer turns.

Functions work in the caller's session (one transaction per request) and return the live events
to publish *after* commit as ``(channel, payload)`` pairs: ``conv:<id>`` for the customer's
sockets, ``agents`` for the console.
"""

from __future__ import annotations

import dataclasses
import hmac
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import JSON, Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from annae import errors
from annae.nlu.policy import Decision
from annae.privacy.redact import redact_text
from annae.store.db import aware, iso, rowcount, utcnow
from annae.store.direct import Direct, Loader
from annae.store.tables.service import Conversation, Message, User
from annae.store.tokens import hash_secret, new_secret

log = logging.getLogger("annae.conversations")
STATES = ("bot", "waiting", "agent", "resolved")
SILENT = ("waiting", "agent")  # the bot does not answer in these states
MAX_TEXT = 4000

Event = tuple[str, dict]

TEXTS = {
    "handoff": {
        "en": "Connecting you to a person… please wait a moment.",
        "ko": "상담원에게 연결해 드릴게요. 잠시만 기다려 주세요.",
    },
    "clarify": {"en": "Did you mean one of these?", "ko": "혹시 다음 중 하나를 찾으시나요?"},
    "out_of_scope": {
        "en": "Sorry, that is outside what I can help with here: I answer questions about "
        "orders, shipping, returns, payments and gifts. Would you like to talk to a person?",
        "ko": "죄송해요, 그 질문은 제가 도와드리기 어려워요. 저는 주문, 배송, 반품, 결제, 선물에 "
        "관한 질문에 답해 드려요. 상담원과 이야기하시겠어요?",
    },
    "queued": {
        "en": "Thanks, a person will reply here shortly.",
        "ko": "메시지를 전달했어요. 상담원이 곧 답변드릴게요.",
    },
}


class ConversationError(errors.AnnaeError):
    """A conversation operation that cannot be done; ``status``/``code`` map to the HTTP error."""

    status, code = 400, "bad_request"


class NotFound(errors.NotFound, ConversationError):
    pass


class Conflict(errors.Conflict, ConversationError):
    pass


class Invalid(ConversationError):
    pass


class CandidateLike(Protocol):
    """An entry a decision considered (what a clarify reply offers)."""

    @property
    def entry_id(self) -> int | None: ...
    @property
    def key(self) -> str: ...
    @property
    def question(self) -> str: ...
    @property
    def confidence(self) -> float: ...


class DecisionLike(Protocol):
    # read-only members: an implementation may narrow them (``Decision.type`` is a Literal)
    @property
    def type(self) -> str: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def entry_id(self) -> int | None: ...
    @property
    def answer(self) -> str | None: ...
    @property
    def confidence(self) -> float: ...
    @property
    def candidates(self) -> Sequence[CandidateLike]: ...
    @property
    def language(self) -> str: ...

    def to_dict(self) -> dict[str, Any]: ...


class EngineLike(Protocol):
    def decide(self, text: str) -> DecisionLike: ...


@dataclass
class Outcome:
    """What a customer turn produced: the reply for the caller and the events to publish."""

    reply: dict
    events: list[Event] = field(default_factory=list)
    decision: Any = None


def text_for(kind: str, language: str | None) -> str:
    table = TEXTS[kind]
    return table.get(language or "en", table["en"])


# --- creating and reading -------------------------------------------------------------------


def create(
    session: Session,
    *,
    language: str | None = None,
    customer_id: str | None = None,
    channel: str = "web",
    verified: bool = False,
    customer_name: str | None = None,
    customer_email: str | None = None,
) -> tuple[Conversation, str]:
    """A new conversation in state ``bot`` and its customer token (returned once, stored hashed).

    ``verified`` marks a customer id proven by the shop's signature (``annae.agents.identity``);
    ``customer_name``/``customer_email`` are what the shop passed along for the agent."""
    token = new_secret()
    now = utcnow()
    conv = Conversation(
        id=uuid.uuid4().hex,
        token_hash=hash_secret(token),
        customer_id=customer_id,
        channel=channel,
        verified=verified,
        customer_name=customer_name,
        customer_email=customer_email,
        state="bot",
        language=language,
        created_at=now,
        updated_at=now,
    )
    session.add(conv)
    session.flush()
    return conv, token


def find(session: Session, conv_id: str | None) -> Conversation | None:
    """The conversation or None, from the session's identity map when it is already loaded
    (then without a round trip)."""
    return session.get(Conversation, conv_id) if conv_id else None


# built once: a statement built per call costs more CPU than its round trip (its cache key too)
_BY_ID_LOCKED = (
    select(Conversation).where(Conversation.id == bindparam("conv_id")).with_for_update()
)
# every turn reads its conversation: on the driver's cursor (annae.store.direct)
_BY_ID = Loader(Conversation, Conversation.__table__.c.id == bindparam("conv_id"))


def get(session: Session, conv_id: str, *, lock: bool = False) -> Conversation:
    """The conversation or :class:`NotFound`."""
    conv = None
    if conv_id and len(conv_id) <= 32:
        params = {"conv_id": conv_id}
        conv = (
            session.scalar(_BY_ID_LOCKED, params) if lock else _BY_ID.one_or_none(session, params)
        )
    if conv is None:
        raise NotFound(f"no conversation with id {conv_id!r}")
    return conv


def token_matches(conv: Conversation, token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(conv.token_hash, hash_secret(token))


def token_is_known(session: Session, token: str) -> bool:
    """Whether ``token`` opens some conversation (to tell "wrong token" from "another's")."""
    hashed = hash_secret(token)
    return (
        session.scalar(select(Conversation.id).where(Conversation.token_hash == hashed)) is not None
    )


def message_dict(
    msg: Message | NewMessage, author: str | None = None, *, with_decision: bool = False
) -> dict:
    out: dict[str, Any] = {
        "id": msg.id,
        "conversation_id": msg.conversation_id,
        "sender": msg.sender,
        "type": msg.type,
        "text": msg.text,
        "entry_id": msg.entry_id,
        "confidence": msg.confidence,
        "options": msg.options or [],
        "author": author,
        "created_at": iso(msg.created_at),
    }
    if with_decision:
        out["decision"] = msg.decision
    return out


def messages(
    session: Session, conv_id: str, *, after: int | None = None, with_decision: bool = False
) -> list[dict]:
    """The transcript, oldest first (only messages with id > ``after`` when given)."""
    stmt = (
        select(Message, User.username)
        .join(User, User.id == Message.agent_id, isouter=True)
        .where(Message.conversation_id == conv_id)
        .order_by(Message.id)
    )
    if after is not None:
        stmt = stmt.where(Message.id > after)
    return [message_dict(m, name, with_decision=with_decision) for m, name in session.execute(stmt)]


def agent_name(session: Session, conv: Conversation) -> str | None:
    if conv.assigned_agent_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == conv.assigned_agent_id))


def waiting_seconds(conv: Conversation) -> float | None:
    if conv.state != "waiting" or conv.waiting_since is None:
        return None
    return round((utcnow() - aware(conv.waiting_since)).total_seconds(), 1)


def public_dict(conv: Conversation) -> dict:
    """What the customer may see about their conversation."""
    return {
        "id": conv.id,
        "state": conv.state,
        "reason": conv.handoff_reason,
        "language": conv.language,
        "created_at": iso(conv.created_at),
        "updated_at": iso(conv.updated_at),
    }


def summary_dict(session: Session, conv: Conversation) -> dict:
    """What an agent sees in lists."""
    return {
        **public_dict(conv),
        "agent": agent_name(session, conv),
        "customer_id": conv.customer_id,
        "verified": bool(conv.verified),
        "customer_name": conv.customer_name,
        "customer_email": conv.customer_email,
        "channel": conv.channel,
        "waiting_since": iso(conv.waiting_since),
        "waiting_seconds": waiting_seconds(conv),
    }


def previous_of(session: Session, conv: Conversation, limit: int = 20) -> list[dict]:
    """The same customer's other conversations, newest first (none for anonymous ones)."""
    if not conv.customer_id:
        return []
    rows = session.scalars(
        select(Conversation)
        .where(Conversation.customer_id == conv.customer_id, Conversation.id != conv.id)
        .order_by(Conversation.created_at.desc(), Conversation.id)
        .limit(limit)
    )
    return [{**public_dict(c), "channel": c.channel} for c in rows]


def queue_length(session: Session) -> int:
    """How many conversations wait for an agent."""
    return (
        session.scalar(
            select(func.count()).select_from(Conversation).where(Conversation.state == "waiting")
        )
        or 0
    )


# --- state changes --------------------------------------------------------------------------


def add_message(
    session: Session, conv: Conversation, sender: str, type_: str, text: str, **fields
) -> Message:
    """Add a message and flush it (its INSERT now: the caller reads its id).

    What customers write is stored with personal data replaced by typed placeholders
    (``[EMAIL]``, ``[PHONE]``, …: ``annae.privacy.redact``); the bot decides on the original
    text in memory, which is never written. Agents' replies are stored as sent: they carry
    the shop's own contact details (a support address in a KB answer is not personal data).
    """
    if sender == "customer":
        text = redact_text(text)
    msg = Message(
        conversation_id=conv.id, sender=sender, type=type_, text=text, created_at=utcnow(), **fields
    )
    session.add(msg)
    session.flush()
    return msg


# SQL NULL (not JSON 'null') for messages without options or a decision, as the ORM writes them
_JSON_OR_NULL = JSON(none_as_null=True)
_MESSAGES = cast(Table, Message.__table__)  # declared with __tablename__: a Table
_MESSAGE_COLUMNS = (
    "conversation_id",
    "sender",
    "type",
    "text",
    "entry_id",
    "confidence",
    "options",
    "decision",
    "agent_id",
    "created_at",
)


class NewMessage:
    """A turn's message as :func:`insert_messages` stores it: the columns of :class:`Message`
    (unset ones None, as on a new ``Message``) and, once stored, its ``id``. A plain object: the
    ORM's instrumented constructor and attributes cost more than the rest of building a turn's
    messages, and these never enter the session."""

    __slots__ = (*_MESSAGE_COLUMNS, "id")
    conversation_id: str
    sender: str
    type: str
    text: str
    entry_id: int | None
    confidence: float | None
    options: list | None
    decision: dict | None
    agent_id: int | None
    created_at: datetime
    id: int | None

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.pop(name, None))
        if fields:
            raise TypeError(f"not columns of a message: {', '.join(fields)}")


def new_message(conv: Conversation, sender: str, type_: str, text: str, **fields) -> NewMessage:
    """A message not yet stored (customers' text redacted, as in :func:`add_message`)."""
    if sender == "customer":
        text = redact_text(text)
    return NewMessage(
        conversation_id=conv.id, sender=sender, type=type_, text=text, created_at=utcnow(), **fields
    )


def _insert_messages(n: int) -> Direct:
    """``INSERT INTO messages … VALUES (…), … RETURNING id`` for ``n`` rows (built once per n)."""
    stmt = _INSERTS.get(n)
    if stmt is None:
        types = {name: _MESSAGES.c[name].type for name in _MESSAGE_COLUMNS}
        types.update(options=_JSON_OR_NULL, decision=_JSON_OR_NULL)
        rows = [
            {name: bindparam(f"{name}_{i}", type_=types[name]) for name in _MESSAGE_COLUMNS}
            for i in range(n)
        ]
        stmt = _INSERTS[n] = Direct(insert(_MESSAGES).values(rows).returning(_MESSAGES.c.id))
    return stmt


_INSERTS: dict[int, Direct] = {}
_INSERT_ROWS = 8  # rows per INSERT at most: a few statements built, far below parameter limits


def insert_messages(session: Session, msgs: Sequence[NewMessage]) -> None:
    """Store ``msgs`` with one INSERT for every eight (a turn's one to three: one round trip,
    straight on the driver's cursor: :mod:`annae.store.direct`) and set their ids, in order.

    The rows are the same as :func:`add_message` writes; the objects stay outside the session.
    The ids come from the table's sequence (PostgreSQL) or rowid (SQLite), given to the rows of
    one VALUES list in their order: the ids sorted are the rows' ids in order, whatever order
    RETURNING lists them in.
    """
    for start in range(0, len(msgs), _INSERT_ROWS):  # a turn has one to three
        part = msgs[start : start + _INSERT_ROWS]
        params = {
            f"{name}_{i}": getattr(msg, name)
            for i, msg in enumerate(part)
            for name in _MESSAGE_COLUMNS
        }
        cursor = _insert_messages(len(part)).execute(session, params)
        ids = sorted(row[0] for row in cursor.fetchall())
        for msg, id_ in zip(part, ids, strict=True):
            msg.id = id_


def decision_record(decision: DecisionLike) -> dict:
    """``decision.to_dict()`` (the audit record), built without ``dataclasses.asdict``'s deep copy
    when the decision is a plain dataclass (its leaves are numbers and strings)."""
    if dataclasses.is_dataclass(decision) and type(decision).to_dict is _ASDICT_TO_DICT:
        return _plain(decision)
    return decision.to_dict()


_ASDICT_TO_DICT = Decision.to_dict
_LEAVES = (str, int, float, bool, type(None))
_FIELDS: dict[type, tuple[str, ...]] = {}


def _plain(value):
    """``asdict`` for dataclasses, lists, tuples and dicts; other values as they are."""
    cls = type(value)
    if cls in _LEAVES:
        return value
    names = _FIELDS.get(cls)
    if names is None and dataclasses.is_dataclass(cls):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if isinstance(value, list | tuple):
        return cls(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


def transition(
    session: Session, conv: Conversation, to_state: str, from_states: tuple[str, ...], **values
) -> None:
    """Move ``conv`` to ``to_state`` if it is still in one of ``from_states`` (checked in the UPDATE,
    so two processes racing for the same conversation cannot both win)."""
    now = utcnow()
    values = {"state": to_state, "updated_at": now, **values}
    if to_state == "waiting":
        values.setdefault("waiting_since", now)
    else:
        values.setdefault("waiting_since", None)
    if to_state == "resolved":
        values.setdefault("resolved_at", now)
    result = session.execute(
        update(Conversation)
        .where(Conversation.id == conv.id, Conversation.state.in_(from_states))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        session.refresh(conv)
        raise Conflict(f"conversation {conv.id} is {conv.state}, cannot become {to_state}")
    for key, value in values.items():  # what the UPDATE wrote: no SELECT to read it back
        set_committed_value(conv, key, value)


def state_event(session: Session, conv: Conversation) -> dict:
    return {
        "event": "state",
        "conversation_id": conv.id,
        "state": conv.state,
        "reason": conv.handoff_reason,
        "agent": agent_name(session, conv),
    }


def message_events(
    conv: Conversation,
    msgs: Sequence[Message | NewMessage],
    author: str | None = None,
    *,
    to_agents: bool = False,
) -> list[Event]:
    """Every new message goes to the customer's channel; to agents too while people handle it,
    or always with ``to_agents`` (messages of a state change the console shows)."""
    events: list[Event] = []
    for msg in msgs:
        payload = {
            "event": "message",
            "conversation_id": conv.id,
            "message": message_dict(msg, author),
        }
        events.append((f"conv:{conv.id}", payload))
        if to_agents or conv.state in SILENT:
            events.append(("agents", payload))
    return events


# --- the customer's turn --------------------------------------------------------------------


def _options(decision: DecisionLike) -> list[dict]:
    return [
        {
            "entry_id": c.entry_id,
            "key": c.key,
            "question": c.question,
            "confidence": round(float(c.confidence), 4),
        }
        for c in decision.candidates
    ]


def _reply(msg: NewMessage, customer_msg: NewMessage, conv: Conversation) -> dict:
    return {
        "id": msg.id,
        "message_id": customer_msg.id,
        "type": msg.type,
        "text": msg.text,
        "entry_id": msg.entry_id,
        "confidence": msg.confidence,
        "options": msg.options or [],
        "created_at": iso(msg.created_at),
        "state": conv.state,
        "reason": conv.handoff_reason,
    }


def last_bot_message(session: Session, conv_id: str, type_: str | None = None) -> Message | None:
    """The bot's latest message in the conversation (an answer, clarify or hand-off; only of
    type ``type_`` when given), if any."""
    stmt = select(Message).where(Message.conversation_id == conv_id, Message.sender == "bot")
    if type_ is not None:
        stmt = stmt.where(Message.type == type_)
    return session.scalar(stmt.order_by(Message.id.desc()).limit(1))


def post_customer(
    session: Session,
    conv: Conversation,
    *,
    text: str | None = None,
    choice: int | None = None,
    handoff: bool = False,
    engine: EngineLike | None = None,
    entry_answer=None,
    decision: DecisionLike | None = None,
    no_decision: str = "no_model",
    replies: dict[str, str] | None = None,
    handoff_message: Callable[[str | None], tuple[str, list | None]] | None = None,
) -> Outcome:
    """Store a customer turn and the bot's reply (or stay silent while people handle it).

    ``text`` is a question, ``choice`` an ``entry_id`` from the latest clarify options,
    ``handoff`` the customer asking for a person. ``entry_answer(session, entry_id) -> str``
    looks up an entry's current answer (None when deleted or disabled) for a choice and for
    the entry a decision picked: answer text is content, read when replying. ``decision`` is one made beforehand (batched, outside
    the transaction); without it ``engine.decide`` runs here. ``no_decision`` is the hand-off
    reason when there is no decision. ``replies`` maps a language to a configured text for
    the ``out_of_scope`` reply. ``handoff_message(language) -> (text, options)``, when
    given, writes the hand-off message (the desk's routing: outside business hours it says when
    people are back).

    The turn's messages go to the database in one INSERT and the conversation in one UPDATE.
    """
    events: list[Event] = []
    new: list[NewMessage] = []
    if conv.state == "resolved":
        transition(
            session,
            conv,
            "bot",
            ("resolved",),
            resolved_at=None,
            handoff_reason=None,
            assigned_agent_id=None,
        )
        new.append(new_message(conv, "system", "system", "reopened"))
        events.append((f"conv:{conv.id}", state_event(session, conv)))
        events.append(("agents", state_event(session, conv)))

    language = conv.language
    if choice is not None:
        clarify = last_bot_message(session, conv.id)
        offered = (clarify.options or []) if clarify and clarify.type == "clarify" else []
        option = next((o for o in offered if o.get("entry_id") == choice), None)
        if clarify is None or option is None:
            raise Invalid(f"entry {choice} was not offered in the latest clarify reply")
        chosen_text = option.get("question") or str(choice)
        customer = new_message(
            conv,
            "customer",
            "choice",
            chosen_text,
            entry_id=choice,
            confidence=option.get("confidence"),
            decision={"clarify_message_id": clarify.id},
        )
    elif handoff:
        customer = new_message(
            conv,
            "customer",
            "text",
            "[asked for a person]",
            decision={"handoff_requested": True},
        )
    elif text is None:
        raise Invalid("a customer turn needs text, a choice or a hand-off")
    else:
        try:
            if decision is None and engine is not None:
                decision = engine.decide(text)
        except Exception:  # a broken model must not lose the customer: people take over
            log.exception("the engine failed on a customer message")
            decision, no_decision = None, "engine_error"
        if decision is not None and not language:
            language = decision.language
        customer = new_message(
            conv,
            "customer",
            "text",
            text,
            decision=decision_record(decision) if decision is not None else {"model_version": None},
        )
    new.append(customer)
    # the conversation's own changes: with a hand-off they go into its state UPDATE
    touched: dict[str, Any] = {"updated_at": utcnow()}
    if language and conv.language != language:
        touched["language"] = language

    served: str | None = None
    if conv.state not in SILENT and choice is None and not handoff and decision is not None:
        if decision.type == "answer":
            # the decision picks the entry; its answer is read now, so an edit is served at
            # once without retraining (the model's copy is only a fallback without a lookup)
            served = decision.answer or ""
            if entry_answer is not None and decision.entry_id is not None:
                served = entry_answer(session, decision.entry_id)
    unavailable = served is None and decision is not None and decision.type == "answer"
    if conv.state in SILENT:
        _touch(session, conv, touched)
        insert_messages(session, new)
        events += message_events(conv, new)
        # no reply while people handle it: the turn answers that it is queued (not stored)
        queued = NewMessage(
            type="queued", text=text_for("queued", language), created_at=customer.created_at
        )
        return Outcome(_reply(queued, customer, conv), events, decision)

    if choice is not None:
        answer = entry_answer(session, choice) if entry_answer else None
        if not answer:
            raise Invalid(f"entry {choice} has no answer any more")
        _touch(session, conv, touched)
        reply_msg = new_message(
            conv, "bot", "answer", answer, entry_id=choice, confidence=customer.confidence
        )
    elif handoff or decision is None or decision.type == "handoff" or unavailable:
        if handoff:
            reason = "customer_request"
        elif decision is None:
            reason = no_decision
        elif unavailable:  # the entry was deleted or disabled since the model was trained
            reason = "entry_unavailable"
        else:
            reason = decision.reason or "low_confidence"
        transition(session, conv, "waiting", ("bot",), handoff_reason=reason, **touched)
        text, options = (
            handoff_message(language) if handoff_message else (text_for("handoff", language), None)
        )
        reply_msg = new_message(
            conv,
            "bot",
            "handoff",
            text,
            confidence=float(decision.confidence) if decision is not None else None,
            options=options,
        )
        st = state_event(session, conv)
        events.append((f"conv:{conv.id}", st))
        events.append(("agents", {**st, "event": "handoff", "queue_length": queue_length(session)}))
    else:
        _touch(session, conv, touched)
        fields: dict[str, Any] = {"confidence": float(decision.confidence)}
        if decision.type == "out_of_scope":
            # confidently none of the KB's business: say so and offer a person (the chat shows a
            # button), instead of queueing it for the agents
            kind = "out_of_scope"
            reply_text = (replies or {}).get(language or "en") or text_for(kind, language)
        elif decision.type == "clarify":
            kind, reply_text = "clarify", text_for("clarify", language)
            fields["options"] = _options(decision)
        else:
            kind, reply_text = "answer", served or ""
            fields["entry_id"] = decision.entry_id
        reply_msg = new_message(conv, "bot", kind, reply_text, **fields)
    new.append(reply_msg)
    insert_messages(session, new)
    events += message_events(conv, new)
    return Outcome(_reply(reply_msg, customer, conv), events, decision)


_CONVERSATIONS = cast(Table, Conversation.__table__)
_TOUCH: dict[tuple[str, ...], Direct] = {}  # one UPDATE statement per set of columns, built once


def _touch(session: Session, conv: Conversation, values: dict) -> None:
    """Write ``values`` to ``conv``'s row with one UPDATE, now (on the driver's cursor:
    :mod:`annae.store.direct`), and set them on ``conv`` as committed (the ORM's flush of the
    same change costs several times the CPU). Like that flush, it fails with ``StaleDataError``
    when the row is gone."""
    names = tuple(values)
    stmt = _TOUCH.get(names)
    if stmt is None:
        table = _CONVERSATIONS
        stmt = _TOUCH[names] = Direct(
            update(table)
            .where(table.c.id == bindparam("conv_id"))
            .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names})
        )
    params = {f"v_{name}": value for name, value in values.items()}
    params["conv_id"] = conv.id
    if stmt.execute(session, params).rowcount != 1:
        raise StaleDataError(f"conversation {conv.id} was deleted during the turn")
    for key, value in values.items():
        set_committed_value(conv, key, value)
