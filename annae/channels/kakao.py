"""KakaoTalk channel: a Kakao i Open Builder skill server (skill response format version 2.0).

The turn itself is every channel's (:func:`annae.channels.turn.commit_turn`); this
module maps a Kakao user to a conversation, reads the utterance as a question, a clarify choice,
a request for a person or a rating, and renders the reply as Kakao outputs.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.channels import hooks, outbox
from annae.dialogue import channel_queries
from annae.dialogue import conversations as convs
from annae.settings import Settings
from annae.store.db import aware, utcnow
from annae.store.tables.channels import ChannelContact, OutboxItem

if TYPE_CHECKING:
    from annae.store.tables.service import Conversation

MAX_SIMPLE_TEXT = 1000  # Kakao's limit for simpleText.text
MAX_LABEL = 14  # quickReplies label
LABELS = {
    "handoff": {"ko": "상담원 연결", "en": "Talk to a person"},
    "helpful": {"ko": "👍 도움이 됐어요", "en": "👍 Helpful"},
    "unhelpful": {"ko": "👎 도움이 안 됐어요", "en": "👎 Not helpful"},
}
TEXTS = {
    "thanks": {"ko": "평가해 주셔서 감사합니다.", "en": "Thank you for your feedback."},
    "sorry": {
        "ko": "도움이 되지 못해 죄송해요. 상담원 연결을 누르시면 사람이 답변드려요.",
        "en": "Sorry that did not help. Choose 'Talk to a person' for a person's reply.",
    },
    "wait": {"ko": "답변을 준비하고 있어요. 잠시만 기다려 주세요.", "en": "One moment, please."},
    "agent_wait": {
        "ko": "상담원에게 전달했어요. 1분 안에 답변이 오면 바로 보내 드릴게요.",
        "en": "Sent to a person. If they reply within a minute you get it right here.",
    },
    "later": {
        "ko": "상담원이 아직 답변 중이에요. 답변은 다음 메시지를 보내실 때 함께 전해 드릴게요.",
        "en": "A person is still on it. Their reply comes with your next message.",
    },
    "resolved": {"ko": "상담이 종료되었어요.", "en": "This conversation was closed."},
    "products": {"ko": "함께 보면 좋은 상품", "en": "You may also like"},
}
_ALL_HANDOFF = {v for v in LABELS["handoff"].values()} | {"상담원", "상담사 연결", "사람"}


class KakaoUser(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1, max_length=200)


class UserRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    utterance: str = Field(max_length=convs.MAX_TEXT)
    user: KakaoUser
    callbackUrl: str | None = Field(None, max_length=2000)  # noqa: N815 (Kakao's name)


class Bot(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str | None = None


class SkillPayload(BaseModel):
    """The fields of Open Builder's skill request that Annae reads (others are allowed)."""

    model_config = ConfigDict(extra="allow")
    userRequest: UserRequest  # noqa: N815
    bot: Bot | None = None


def example_request(text: str, user: str = "kakao-user-1", callback: str | None = None) -> dict:
    """A skill request as Open Builder sends it (for the docs, tests and the benchmark)."""
    req = {
        "timezone": "Asia/Seoul",
        "params": {"ignoreMe": "true"},
        "block": {"id": "blockid", "name": "폴백 블록"},
        "utterance": text,
        "lang": "ko",
        "user": {"id": user, "type": "botUserKey", "properties": {"botUserKey": user}},
    }
    if callback:
        req["callbackUrl"] = callback
    return {
        "intent": {"id": "intentid", "name": "폴백 블록"},
        "userRequest": req,
        "bot": {"id": "botid", "name": "annae-shop"},
        "action": {
            "name": "annae",
            "clientExtra": None,
            "params": {},
            "id": "actionid",
            "detailParams": {},
        },
    }


def label(kind: str, language: str | None) -> str:
    table = LABELS.get(kind) or TEXTS[kind]
    return table.get(language or "ko", table["ko"])


def text(kind: str, language: str | None) -> str:
    return TEXTS[kind].get(language or "ko", TEXTS[kind]["ko"])


# --- rendering ------------------------------------------------------------------------------


def simple_text(value: str) -> dict:
    value = value.strip() or "…"
    if len(value) > MAX_SIMPLE_TEXT:
        value = value[: MAX_SIMPLE_TEXT - 1] + "…"
    return {"simpleText": {"text": value}}


def quick_reply(label_text: str, message: str | None = None) -> dict:
    short = label_text if len(label_text) <= MAX_LABEL else label_text[: MAX_LABEL - 1] + "…"
    return {"label": short, "action": "message", "messageText": message or label_text}


def carousel(cards: list[dict], language: str | None) -> dict:
    won = "원" if (language or "ko") == "ko" else ""
    items = []
    for c in cards[:10]:
        price = c.get("price")
        desc = f"{price:,.0f}{won}" if isinstance(price, int | float) else ""
        if c.get("reason"):
            desc = f"{desc} · {c['reason']}" if desc else str(c["reason"])
        items.append(
            {
                "title": str(c.get("name") or c.get("product_id"))[:50],
                "description": desc[:230],
                "buttons": [quick_reply_button(c, language)],
            }
        )
    return {"carousel": {"type": "basicCard", "items": items}}


def quick_reply_button(card: dict, language: str | None) -> dict:
    name = str(card.get("name") or card.get("product_id"))
    return {
        "action": "message",
        "label": "자세히 보기" if (language or "ko") == "ko" else "Details",
        "messageText": name[:200],
    }


def response(outputs: list[dict], quick_replies: list[dict] | None = None) -> dict:
    template: dict = {"outputs": outputs[:3] or [simple_text("…")]}
    if quick_replies:
        template["quickReplies"] = quick_replies[:10]
    return {"version": "2.0", "template": template}


def use_callback(wait_text: str) -> dict:
    return {"version": "2.0", "useCallback": True, "data": {"text": wait_text}}


def render(reply: dict, language: str | None, notices: list[str], cards: list[dict]) -> dict:
    """The skill response for a turn's reply (as the web API returns it)."""
    outputs = [simple_text("\n\n".join(notices))] if notices else []
    outputs.append(simple_text(reply.get("text") or ""))
    quick: list[dict] = []
    if reply["type"] == "clarify":
        quick = [quick_reply(o["question"]) for o in reply.get("options") or []]
        quick.append(quick_reply(label("handoff", language)))
    elif reply["type"] == "answer":
        if cards:
            outputs.append(carousel(cards, language))
        quick = [quick_reply(label(k, language)) for k in ("helpful", "unhelpful", "handoff")]
    if len(outputs) > 3:  # Kakao takes at most three outputs: join the notices into the first
        outputs = [outputs[0], *outputs[-2:]]
    return response(outputs, quick)


# --- contacts and intents -------------------------------------------------------------------


@dataclass
class Prepared:
    """What the skill request is, decided in the first transaction."""

    conversation_id: str
    contact_id: int
    language: str | None
    kind: str  # "text" | "choice" | "handoff" | "rated"
    choice: int | None = None
    rating: dict | None = None
    helpful: bool | None = None
    notices: list[str] = field(default_factory=list)


def contact_for(
    session: Session, channel: tuple[int, str, dict], user_id: str, settings: Settings
) -> tuple[ChannelContact, Conversation, list[str]]:
    """The Kakao user's contact and current conversation (a new one after resolve + idle time),
    and what the user was not yet sent from the conversation that ended."""
    channel_id, name, _ = channel
    contact = session.scalar(
        select(ChannelContact)
        .where(ChannelContact.channel_id == channel_id, ChannelContact.external_id == user_id)
        .with_for_update()
    )
    conv, carried = None, []
    if contact is not None and contact.conversation_id:
        conv = convs.find(session, contact.conversation_id)
        if conv is not None and conv.state == "resolved":
            idle = timedelta(minutes=settings.kakao_idle_minutes)
            if utcnow() - aware(conv.resolved_at or conv.updated_at) >= idle:
                carried = pending(session, contact, conv)
                conv = None
    if conv is None:
        conv, _token = convs.create(
            session, customer_id=f"kakao:{user_id}", channel=f"kakao:{name}"
        )
        hooks.created(session, conv)
        if contact is None:
            contact = ChannelContact(
                channel_id=channel_id, external_id=user_id, created_at=utcnow(), delivered_upto=0
            )
            session.add(contact)
        contact.conversation_id = conv.id
        contact.callback_url, contact.callback_expires_at = None, None
        contact.updated_at = utcnow()
        session.flush()
    assert contact is not None  # conv came from the contact, or both were made just now
    return contact, conv, carried


def fixed_intent(utterance: str) -> tuple[str | None, bool | None]:
    """The fixed quick replies: ``("handoff", None)``, ``("rate", helpful)`` or ``(None, None)``."""
    said = utterance.strip()
    if said in _ALL_HANDOFF:
        return "handoff", None
    for kind, helpful in (("helpful", True), ("unhelpful", False)):
        if said in LABELS[kind].values():
            return "rate", helpful
    return None, None


def read_intent(
    session: Session, conv: Conversation, utterance: str
) -> tuple[str, int | None, bool | None]:
    """``(kind, choice, helpful)`` for what the user sent: a quick reply or a question."""
    said = utterance.strip()
    fixed, helpful = fixed_intent(said)
    if fixed is not None:
        return fixed, None, helpful
    if conv.state == "bot":
        last = convs.last_bot_message(session, conv.id)
        if last is not None and last.type == "clarify":
            for option in last.options or []:
                if said == (option.get("question") or "").strip():
                    return "choice", option.get("entry_id"), None
    return "text", None, None


def prepare(
    session: Session,
    channel: tuple[int, str, dict],
    payload: SkillPayload,
    settings: Settings,
) -> Prepared:
    """First transaction: the contact, its conversation, and what the utterance means.

    A rating is stored here (it is not a turn: it does not reopen a resolved conversation)."""
    from annae.learning import feedback

    req = payload.userRequest
    contact, conv, carried = contact_for(session, channel, req.user.id, settings)
    kind, choice, helpful = read_intent(session, conv, req.utterance)
    prepared = Prepared(conv.id, contact.id, conv.language, kind, choice=choice, notices=carried)
    if kind == "rate":
        answer = convs.last_bot_message(session, conv.id, "answer")
        if answer is None:
            prepared.kind = "text"
        else:
            rating = feedback.rate_answer(
                session, conv.id, answer.id, bool(helpful), settings=settings
            )
            hooks.rated(session, conv.id, rating)
            prepared.kind, prepared.rating, prepared.helpful = "rated", rating, helpful
            prepared.notices += pending(session, contact, conv)
    return prepared


def pending(
    session: Session,
    contact: ChannelContact,
    conv: Conversation,
    skip: AbstractSet[int] = frozenset(),
) -> list[str]:
    """Agent messages (and a close notice) the user has not been sent yet; marks them sent."""
    rows = channel_queries.messages_after(session, conv.id, contact.delivered_upto)
    out = []
    for msg in rows:
        if msg.id in skip:
            continue
        if msg.sender == "agent":
            out.append(msg.text)
        elif msg.sender == "system" and msg.text == "resolved":
            out.append(text("resolved", conv.language))
    if rows:
        contact.delivered_upto = max(contact.delivered_upto, rows[-1].id)
    return out


def after_turn(
    session: Session,
    conv: Conversation,
    outcome: convs.Outcome,
    *,
    contact_id: int,
    callback_url: str | None,
    settings: Settings,
    model_loader,
) -> tuple[list[str], list[dict], bool]:
    """In the turn's transaction: pending agent messages, product cards, and (for a reply that
    waits for a person) the callback registered for the agent's first reply."""
    contact = session.get(ChannelContact, contact_id)
    assert contact is not None  # found (and locked) by contact_for in this transaction
    reply = outcome.reply
    mine = {i for i in (reply.get("message_id"), reply.get("id")) if i is not None}
    notices = pending(session, contact, conv, mine)
    cards: list[dict] = []
    if reply["type"] == "answer" and reply.get("entry_id") and conv.customer_id:
        cards = product_cards(session, conv, reply["entry_id"], model_loader)
    waiting = reply["type"] in ("handoff", "queued") and bool(callback_url)
    if waiting:
        assert callback_url is not None  # waiting needs one
        register_callback(session, contact, callback_url, settings)
    return notices, cards, waiting


def product_cards(session: Session, conv: Conversation, entry_id: int, model_loader) -> list[dict]:
    """Cards as in the web chat: only for a customer whose consent covers marketing."""
    from annae.recommend import service
    from annae.recommend.service import CARDS, card
    from annae.recommend.store import RecommendError, has_marketing_consent

    customer_id = conv.customer_id
    assert customer_id is not None  # after_turn asks only for a known customer
    if not has_marketing_consent(session, customer_id):
        return []
    try:
        items = service.recommend_for_entry(session, model_loader(), entry_id, customer_id, CARDS)
    except RecommendError:
        return []
    return [card(i) for i in items]


def register_callback(
    session: Session, contact: ChannelContact, url: str, settings: Settings
) -> None:
    """Keep the callback for the agent's reply; when it is about to expire unused, it tells the
    user that the reply comes with their next message."""
    expires = utcnow() + timedelta(seconds=settings.kakao_callback_seconds)
    contact.callback_url, contact.callback_expires_at = url, expires
    outbox.enqueue(
        session,
        "kakao",
        "callback.expiry",
        {"url": url, "contact_id": contact.id, "body": None},
        not_before=expires,
    )


def callback_expiry_body(session: Session, item: OutboxItem) -> dict | None:
    """At expiry: the 'comes with your next message' notice, unless the callback was used."""
    contact = session.get(ChannelContact, item.payload.get("contact_id"), with_for_update=True)
    if contact is None or contact.callback_url != item.payload.get("url"):
        return None
    contact.callback_url, contact.callback_expires_at = None, None
    conv = convs.find(session, contact.conversation_id) if contact.conversation_id else None
    return response([simple_text(text("later", conv.language if conv else None))])


def on_message(session: Session, conv: Conversation, message: dict) -> None:
    """An agent's message: pushed on the user's callback while it is valid (else it waits for the
    user's next message)."""
    if message.get("sender") != "agent":
        return
    contact = session.scalar(
        select(ChannelContact).where(ChannelContact.conversation_id == conv.id).with_for_update()
    )
    if contact is None or not contact.callback_url or contact.callback_expires_at is None:
        return
    if aware(contact.callback_expires_at) <= utcnow():
        return
    outputs = [simple_text(message.get("text") or "")]
    if message.get("type") == "products" and message.get("options"):
        outputs.append(carousel(message["options"], conv.language))
    outbox.enqueue(
        session,
        "kakao",
        "callback.reply",
        {"url": contact.callback_url, "body": response(outputs)},
    )
    contact.callback_url, contact.callback_expires_at = None, None
    contact.delivered_upto = max(contact.delivered_upto, int(message.get("id") or 0))
