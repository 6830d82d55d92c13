"""E-mail channel: an SMTP receiver Annae runs (aiosmtpd), threading by Message-ID /
In-Reply-To / References (one thread per conversation), answers and agent replies by SMTP.

Inbound mail goes through the turn every channel shares (:func:`annae.channels.turn.commit_turn`); the bot answers by mail only
when it is confident (an ``answer``); anything else waits for a person. Outbound mail is an
outbox item (durable, retried) written by :func:`on_message` in the turn's transaction.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from annae.channels import hooks, outbox
from annae.channels.mailtext import Dropped, Inbound, parse
from annae.channels.turn import commit_turn
from annae.dialogue import conversations as convs
from annae.settings import Settings, get_settings
from annae.store.db import session_scope, utcnow
from annae.store.tables.channels import Channel, ChannelContact, ChannelRef
from annae.store.tables.service import Conversation

log = logging.getLogger("annae.email")
LINK_TEXT = {
    "en": ("Did this answer help? Yes: {yes}\nNo, I need a person: {no}"),
    "ko": ("답변이 도움이 되었나요? 네: {yes}\n아니요, 상담원이 필요해요: {no}"),
}


# --- links in the bot's answers -------------------------------------------------------------


def _key(settings) -> str:
    """``ANNAE_SECRET_KEY``, else a random key kept in ANNAE_HOME (made once)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(settings.home) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(32))
        except FileExistsError:
            pass
    return path.read_text().strip()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings, body: str) -> str:
    key = hashlib.sha256(b"annae-mail:" + _key(settings).encode()).digest()
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest())


def make_link(settings, conv_id: str, message_id: int, action: str) -> str:
    """A link that records the customer's click; signed (HMAC-SHA256) so it cannot be forged."""
    body = _b64(json.dumps([conv_id, message_id, action], separators=(",", ":")).encode())
    token = f"{body}.{_mac(settings, body)}"
    return f"{get_settings().public_url.rstrip('/')}/channels/email/link/{token}"


def read_link(settings, token: str) -> tuple[str, int, str] | None:
    body, _, mac = token.partition(".")
    if not body or not hmac.compare_digest(mac.encode(), _mac(settings, body).encode()):
        return None
    try:
        conv_id, message_id, action = json.loads(_unb64(body))
    except (ValueError, TypeError):
        return None
    if action not in ("helpful", "handoff") or not isinstance(message_id, int):
        return None
    return str(conv_id), message_id, action


# --- inbound --------------------------------------------------------------------------------


def pick_channel(session: Session, recipients: list[str]) -> Channel | None:
    """The active e-mail channel whose ``address`` is a recipient, else the only/first one."""
    rows = list(
        session.scalars(
            select(Channel)
            .where(Channel.kind == "email", Channel.active.is_(True))
            .order_by(Channel.id)
        )
    )
    wanted = {r.lower() for r in recipients}
    for ch in rows:
        if (ch.config or {}).get("address", "").lower() in wanted:
            return ch
    return rows[0] if rows else None


def thread_of(session: Session, channel: Channel, mail: Inbound) -> ChannelContact | None:
    """The thread (contact) this mail replies to, by its References / In-Reply-To ids."""
    if not mail.refs:
        return None
    ref = session.scalar(
        select(ChannelRef)
        .where(ChannelRef.channel_id == channel.id, ChannelRef.ref.in_(mail.refs))
        .order_by(ChannelRef.id.desc())
        .limit(1)
    )
    if ref is None:
        return None
    return session.scalar(
        select(ChannelContact).where(ChannelContact.conversation_id == ref.conversation_id)
    )


def _seen(session: Session, channel_id: int, ref: str) -> bool:
    """Whether the message id ``ref`` is already recorded for the channel."""
    return (
        session.scalar(
            select(ChannelRef.id).where(ChannelRef.channel_id == channel_id, ChannelRef.ref == ref)
        )
        is not None
    )


def _remember(session: Session, channel_id: int, ref: str | None, conv_id: str) -> None:
    if ref and not _seen(session, channel_id, ref):
        session.add(
            ChannelRef(
                channel_id=channel_id, ref=ref[:998], conversation_id=conv_id, created_at=utcnow()
            )
        )


def receive(svc, raw: bytes, envelope_from: str | None, recipients: list[str]) -> str:
    """Handle one inbound mail; returns what happened (for the log and the tests)."""
    settings = get_settings()
    try:
        mail = parse(raw, envelope_from, {parseaddr(settings.mail_from)[1].lower()})
    except Dropped as exc:
        log.info("mail dropped: %s", exc)
        return f"dropped: {exc}"
    text = mail.text[: convs.MAX_TEXT]
    with session_scope(svc.db) as session:
        channel = pick_channel(session, recipients)
        if channel is None:
            log.warning(
                "mail for %s dropped: no e-mail channel (annae channel add email NAME)", recipients
            )
            return "dropped: no e-mail channel"
        if mail.message_id and _seen(session, channel.id, mail.message_id):
            log.info("mail %s seen before: dropped", mail.message_id)
            return "dropped: duplicate"
        contact = thread_of(session, channel, mail)
        if contact is None:
            conv, _ = convs.create(
                session, customer_id=f"email:{mail.sender}", channel=f"email:{channel.name}"
            )
            hooks.created(session, conv)
            contact = ChannelContact(
                channel_id=channel.id,
                external_id=(mail.message_id or make_msgid())[:320],
                conversation_id=conv.id,
                delivered_upto=0,
                meta={"address": mail.sender, "subject": mail.subject},
                created_at=utcnow(),
                updated_at=utcnow(),
            )
            session.add(contact)
        # a thread is found by its conversation, a new one made with it: never None here
        assert contact.conversation_id is not None
        _remember(session, channel.id, mail.message_id, contact.conversation_id)
        meta = dict(contact.meta or {})
        meta["last_inbound"] = mail.message_id
        contact.meta = meta
        conv_id, channel_id = contact.conversation_id, channel.id
    if svc.limiter.hit("conversation", f"email:{mail.sender}") > 0:
        log.warning(
            "mail from %s over the rate limit: stored nothing, answered nothing", mail.sender
        )
        return "dropped: rate limited"
    decision, failure = None, "no_model"
    engine = svc.holder.get()
    if engine is not None:
        try:
            decision = engine.decide(text)
        except Exception:
            log.exception("the engine failed on a mail")
            failure = "engine_error"
    if decision is not None and decision.type != "answer":  # by mail only confident answers
        decision = dataclasses.replace(
            decision, type="handoff", reason=decision.reason or "not_sure_by_email"
        )
    stored = Inbound(
        mail.sender, mail.message_id, mail.subject, mail.refs, text, mail.attachments
    ).stored_text()
    reply, _ = commit_turn(
        svc,
        lambda s: convs.get(s, conv_id),
        text=stored[: convs.MAX_TEXT],
        decision=decision,
        failure=failure,
    )
    outbox.wake(svc)
    log.info("mail from channel %s into conversation %s: %s", channel_id, conv_id, reply["type"])
    return reply["type"]


# --- outbound -------------------------------------------------------------------------------


def on_message(session: Session, conv: Conversation, message: dict) -> None:
    """A bot answer or hand-off notice, or an agent's reply: one mail in the thread."""
    if message.get("type") not in ("answer", "handoff", "agent", "products"):
        return
    contact = session.scalar(
        select(ChannelContact).where(ChannelContact.conversation_id == conv.id)
    )
    if contact is None or not (contact.meta or {}).get("address"):
        return
    settings = get_settings()
    meta = contact.meta
    assert meta is not None  # it has an address (above)
    refs = list(
        session.scalars(
            select(ChannelRef.ref)
            .where(
                ChannelRef.conversation_id == conv.id, ChannelRef.channel_id == contact.channel_id
            )
            .order_by(ChannelRef.id)
        )
    )
    msg = EmailMessage()
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "annae.local"
    message_id = make_msgid(domain=domain)
    subject = meta.get("subject") or "Your question"
    msg["From"] = settings.mail_from
    msg["To"] = meta["address"]
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = message_id
    if meta.get("last_inbound"):
        msg["In-Reply-To"] = meta["last_inbound"]
    if refs:
        msg["References"] = " ".join(refs[-20:])
    body = message.get("text") or ""
    if message.get("sender") == "bot":
        msg["Auto-Submitted"] = "auto-replied"  # RFC 3834: auto-responders must not answer it
        if message.get("type") == "answer" and message.get("id"):
            lang = "ko" if conv.language == "ko" else "en"
            body += "\n\n" + LINK_TEXT[lang].format(
                yes=make_link(settings, conv.id, int(message["id"]), "helpful"),
                no=make_link(settings, conv.id, int(message["id"]), "handoff"),
            )
    if message.get("type") == "products":
        body += "\n" + "\n".join(
            f"- {c.get('name')} ({c.get('price')})" for c in message.get("options") or []
        )
    msg.set_content(body)
    _remember(session, contact.channel_id, message_id, conv.id)
    outbox.enqueue(
        session,
        "email",
        "reply",
        {"mime": msg.as_string(), "to": [meta["address"]]},
        target_id=contact.channel_id,
        ordering=conv.id,
    )


# --- the SMTP receiver ----------------------------------------------------------------------


class _Handler:
    def __init__(self, svc, settings: Settings) -> None:
        self.svc, self.settings = svc, settings

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        import asyncio

        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "replace")
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, receive, self.svc, raw, envelope.mail_from, list(envelope.rcpt_tos)
            )
        except Exception:  # never a crash, never a bounce storm: accepted and logged
            log.exception("an inbound mail could not be handled")
        return "250 OK"


def start_receiver(svc, settings: Settings) -> Callable[[], None]:
    """Run the SMTP receiver on ``ANNAE_SMTP_LISTEN`` (host:port); returns its stop function."""
    from aiosmtpd.controller import Controller

    assert settings.smtp_listen is not None  # the caller starts it only when set
    host, _, port = settings.smtp_listen.rpartition(":")
    controller = Controller(
        _Handler(svc, settings),
        hostname=host or "127.0.0.1",
        port=int(port),
        data_size_limit=settings.mail_max_bytes,
        server_kwargs={"decode_data": False},
    )
    controller.start()
    log.info("SMTP receiver listening on %s", settings.smtp_listen)
    return controller.stop
