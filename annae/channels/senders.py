"""How each kind of outbox item goes out: signed webhook POSTs, Kakao callbacks, Slack-compatible
alerts (plain JSON POSTs) and e-mail through the configured SMTP relay."""

from __future__ import annotations

import json
import smtplib
from email import message_from_string, policy

import httpx
from sqlalchemy.orm import Session

from annae.channels import signing
from annae.channels.outbox import DeliveryError, Sender
from annae.settings import Settings
from annae.store.tables.channels import OutboxItem, Webhook


def _post(client: httpx.Client, url: str, body: bytes, headers: dict) -> int:
    try:
        r = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= r.status_code < 300:
        raise DeliveryError(f"HTTP {r.status_code}: {r.text[:200]}", r.status_code)
    return r.status_code


def make(settings: Settings) -> dict[str, Sender]:
    client = httpx.Client(timeout=settings.outbox_timeout, follow_redirects=False)

    def webhook(session: Session, item: OutboxItem) -> int:
        hook = session.get(Webhook, item.target_id)
        if hook is None or not hook.active:
            raise DeliveryError("the webhook was removed or disabled")
        body = json.dumps(
            {"id": item.delivery_id, "event": item.event, **item.payload},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        return _post(
            client, hook.url, body, signing.headers(hook.secret, body, item.delivery_id, item.event)
        )

    def plain_post(session: Session, item: OutboxItem) -> int | None:
        from annae.channels import kakao

        body = item.payload.get("body")
        if item.kind == "kakao" and body is None:  # compose now: the callback may be used already
            body = kakao.callback_expiry_body(session, item)
            if body is None:
                return None
        data = json.dumps(body, ensure_ascii=False).encode()
        return _post(client, item.payload["url"], data, {"Content-Type": "application/json"})

    def email(session: Session, item: OutboxItem) -> None:
        send_mail(settings, item.payload["mime"], item.payload["to"])

    return {"webhook": webhook, "kakao": plain_post, "slack": plain_post, "email": email}


def send_mail(settings: Settings, mime: str, to: list[str]) -> None:
    """Send one message through ``ANNAE_SMTP_RELAY``."""
    if not settings.smtp_relay:
        raise DeliveryError("ANNAE_SMTP_RELAY is not set")
    host, _, port = settings.smtp_relay.rpartition(":")
    msg = message_from_string(mime, policy=policy.SMTP)
    try:
        with smtplib.SMTP(
            host or "127.0.0.1", int(port or 25), timeout=settings.outbox_timeout
        ) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password or "")
            smtp.send_message(msg, to_addrs=to)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"SMTP: {exc}") from exc
