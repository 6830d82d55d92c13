"""The one place where conversation events reach the outside: called inside the transaction that
made them (with the events the conversation functions return), it writes outbox items for
webhooks, the customer's channel (Kakao, e-mail) and agent alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from annae.channels import alerts, webhooks
from annae.dialogue.conversations import Event, find
from annae.privacy.redact import redact_text

if TYPE_CHECKING:
    from annae.store.tables.service import Conversation


def _redacted(message: dict) -> dict:
    """Customers' text is stored redacted already; agents' and the bot's text is redacted here."""
    if message.get("sender") == "customer":
        return dict(message)
    return {**message, "text": redact_text(message.get("text") or "")}


def record(session: Session, events: list[Event]) -> None:
    """Outbox items for ``events`` (the ``(channel, payload)`` pairs of a conversation change)."""
    for channel, payload in events:
        kind = payload.get("event")
        conv_id = payload.get("conversation_id")
        if channel.startswith("conv:"):
            if kind == "message":
                message = payload["message"]
                if webhooks.wanted(session, "message.created"):  # redaction costs: only if needed
                    data = {"message": _redacted(message)}
                    webhooks.emit(session, "message.created", data, conv_id)
                _to_customer(session, conv_id, message)
            elif kind == "state" and payload.get("state") == "resolved":
                webhooks.emit(session, "conversation.resolved", _state(payload), conv_id)
        elif channel == "agents" and kind == "handoff":
            webhooks.emit(session, "conversation.handoff", _state(payload), conv_id)
            conv = find(session, conv_id)
            if conv is not None:
                alerts.on_handoff(session, conv)


def _state(payload: dict) -> dict:
    return {
        "conversation_id": payload.get("conversation_id"),
        "state": payload.get("state"),
        "reason": payload.get("reason"),
        "agent": payload.get("agent"),
    }


def _to_customer(session: Session, conv_id: str | None, message: dict) -> None:
    """Agent (and, for e-mail, bot) messages of channel conversations go out on that channel."""
    if message.get("sender") not in ("agent", "bot"):
        return
    conv = find(session, conv_id)
    if conv is None:
        return
    if conv.channel.startswith("kakao:"):
        from annae.channels import kakao

        kakao.on_message(session, conv, message)
    elif conv.channel.startswith("email:"):
        from annae.channels import email

        email.on_message(session, conv, message)


def created(session: Session, conv: Conversation) -> None:
    webhooks.emit(
        session,
        "conversation.created",
        {"conversation_id": conv.id, "channel": conv.channel, "language": conv.language},
        conv.id,
    )


def rated(session: Session, conv_id: str, rating: dict) -> None:
    webhooks.emit(session, "rating.created", {"conversation_id": conv_id, **rating}, conv_id)


def promoted(session: Session, version: str, previous: str | None, by: str) -> None:
    webhooks.emit(
        session, "model.promoted", {"version": version, "previous": previous, "by": by}, None
    )
